// Tests for VectorStorage live here.
