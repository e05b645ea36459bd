-- Per-domain averages of the first scorers (heuristics, langid, domain) over the pool.
-- Run: curate sql --store demo-store sql/domain_quality.sql
SELECT
    domain,
    count(*)                                          AS docs,
    round(avg(n_words))                               AS mean_words,
    round(avg(alpha_ratio), 3)                        AS alpha,
    round(avg(symbol_ratio), 3)                       AS symbols,
    round(avg(dup_line_frac), 3)                      AS dup_lines,
    round(avg(top_2gram_frac), 3)                     AS top_2gram,
    mode(lang)                                        AS top_lang,
    round(avg((lang = 'en')::INT), 3)                 AS english,
    round(avg(domain_prob), 3)                        AS domain_prob,
    round(avg((domain_pred = domain)::INT), 3)        AS tagger_agrees
FROM doc_features
WHERE corpus = 'demo'
GROUP BY domain
ORDER BY domain;
