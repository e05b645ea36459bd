-- The largest near-duplicate clusters (from `curate dedup`): size, domains, and two members' openings,
-- the kept one first. Run: curate sql --store demo-store sql/near_dup_clusters.sql
WITH members AS (
    SELECT dup_cluster_id, dup_cluster_size, dup_keep, doc_id, corpus, domain,
           regexp_replace(left(text, 160), '\s+', ' ', 'g') AS opening,
           row_number() OVER (PARTITION BY dup_cluster_id ORDER BY dup_keep DESC, doc_id) AS k
    FROM doc_features
    WHERE dup_cluster_id IS NOT NULL
)
SELECT dup_cluster_id AS cluster, any_value(dup_cluster_size) AS size,
       string_agg(DISTINCT domain, ', ' ORDER BY domain) AS domains,
       string_agg(DISTINCT corpus, ', ' ORDER BY corpus) AS corpora,
       max(opening) FILTER (WHERE k = 1) AS kept,
       max(opening) FILTER (WHERE k = 2) AS removed_example
FROM members
GROUP BY dup_cluster_id
ORDER BY size DESC, cluster
LIMIT 20
