// Tests for VectorIndex live here.
