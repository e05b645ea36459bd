-- Documents, bytes and tokens (bytes tokenizer) per corpus and domain, with each domain's share.
SELECT
    corpus,
    coalesce(domain, '(none)')                                        AS domain,
    count(*)                                                          AS docs,
    sum(n_bytes)                                                      AS tokens_bytes,
    round(100.0 * sum(n_bytes) / sum(sum(n_bytes)) OVER (PARTITION BY corpus), 2) AS pct_of_corpus
FROM docs
GROUP BY corpus, domain
ORDER BY corpus, tokens_bytes DESC;
