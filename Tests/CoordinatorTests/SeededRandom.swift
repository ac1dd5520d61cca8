import VectorCore
