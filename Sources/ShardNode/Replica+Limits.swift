import VectorCore

extension WriteOp {
    var isUpsert: Bool {
        if case .upsert = self { true } else { false }
    }
}

extension Replica {
    /// Admits the field names the upserts of one job bring, against `limit` distinct
    /// names per replica (`RequestLimits.maxFieldNamesPerCollection`): the names the
    /// payload index holds (every name of a point loaded or written since the replica
    /// was loaded), the new ones `staged` by earlier jobs of the same group, and this
    /// job's new ones. Over the limit, returns RESOURCE_EXHAUSTED naming it and leaves
    /// `staged` as it was (the job is refused whole); else adds this job's new names
    /// to `staged`. A stale upsert (ignored by `stage`) is counted too. Committer only.
    func admitFieldNames(_ ops: [WriteOp], staged: inout Set<String>, limit: Int) -> ShoalError? {
        var new: Set<String> = []
        lock.read {
            for case .upsert(_, _, let metadata, _) in ops {
                for name in metadata.keys where !staged.contains(name) && !payload.hasFieldName(name) { new.insert(name) }
            }
        }
        guard !new.isEmpty else { return nil }
        let held = lock.read { payload.fieldNameCount } + staged.count
        guard held + new.count <= limit else {
            return ShoalError(.resourceExhausted,
                "replica \(ref) holds \(held) distinct metadata field names and this write brings \(new.count) more; the limit is \(limit) per collection shard (--max-field-names); reuse field names")
        }
        staged.formUnion(new)
        return nil
    }
}
