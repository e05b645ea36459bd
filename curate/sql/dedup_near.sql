-- Near-duplicate removal (from `curate dedup`): every document except the removable copies, i.e. one
-- document per near-duplicate cluster (chosen by --keep-order, default the longest) plus every document
-- in no cluster. A mixture spec says the same with `where: dup_keep`.
-- Run: curate sql --store demo-store sql/dedup_near.sql
SELECT doc_id, corpus, domain, n_bytes
FROM doc_features
WHERE dup_keep
