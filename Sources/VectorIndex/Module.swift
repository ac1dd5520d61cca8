// The VectorIndex module: not written yet (see README's map and the open issues).
