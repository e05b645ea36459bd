-- Per-domain averages of the first scorers (heuristics, langid, domain) over the pool (corpus 'demo'),
-- and the domain tagger's accuracy on the held-out split it never trained on.
-- Run: curate sql --store demo-store sql/domain_quality.sql
SELECT
    domain,
    count(*) FILTER (corpus = 'demo')                                   AS docs,
    round(avg(n_words) FILTER (corpus = 'demo'))                         AS mean_words,
    round(avg(alpha_ratio) FILTER (corpus = 'demo'), 3)                  AS alpha,
    round(avg(symbol_ratio) FILTER (corpus = 'demo'), 3)                 AS symbols,
    round(avg(dup_line_frac) FILTER (corpus = 'demo'), 3)                AS dup_lines,
    round(avg(top_2gram_frac) FILTER (corpus = 'demo'), 3)               AS top_2gram,
    mode(lang) FILTER (corpus = 'demo')                                  AS top_lang,
    round(avg((lang = 'en')::INT) FILTER (corpus = 'demo'), 3)           AS english,
    round(avg((domain_pred = domain)::INT) FILTER (corpus = 'heldout'), 3) AS tagger_acc_heldout
FROM doc_features
WHERE corpus IN ('demo', 'heldout')
GROUP BY domain
ORDER BY domain;
