-- What leaked (from `curate decontam --target T`): documents outside the target's corpus that hold much
-- of a target document, the target document they share most with, and how much of it they hold.
-- Run: curate sql --store demo-store sql/contamination.sql
SELECT d.corpus, d.domain, d.doc_id, d.overlap_doc_id AS target_doc_id, t.corpus AS target_corpus,
       d.overlap_ngrams, round(d.target_coverage, 3) AS target_coverage,
       round(d.overlap_fraction, 3) AS overlap_fraction,
       regexp_replace(left(d.text, 100), '\s+', ' ', 'g') AS opening
FROM doc_features d
JOIN docs t ON t.doc_id = d.overlap_doc_id
WHERE d.contaminated AND d.corpus <> t.corpus
ORDER BY d.target_coverage DESC, d.overlap_ngrams DESC, d.doc_id
