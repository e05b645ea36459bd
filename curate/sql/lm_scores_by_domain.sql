-- Reference-LM scores per domain: how hard each domain is for the reference LM (bits per byte)
-- and for the proxies (EL2N, GraNd), and how much the three agree (rank correlation).
-- Needs the `perplexity`, `el2n` and `grand` feature tables (`curate demo` builds all three).
-- Run: curate sql --store demo-store sql/lm_scores_by_domain.sql
WITH s AS (
    SELECT domain, bits_per_byte, el2n, grand,
           rank() OVER (PARTITION BY domain ORDER BY bits_per_byte) AS r_bpb,
           rank() OVER (PARTITION BY domain ORDER BY el2n) AS r_el2n,
           rank() OVER (PARTITION BY domain ORDER BY grand) AS r_grand
    FROM doc_features
    WHERE bits_per_byte IS NOT NULL AND el2n IS NOT NULL AND grand IS NOT NULL
)
SELECT domain,
       count(*) AS docs,
       round(median(bits_per_byte), 3) AS median_bits_per_byte,
       round(median(el2n), 4) AS median_el2n,
       round(median(grand), 3) AS median_grand,
       round(corr(r_el2n, r_bpb), 3) AS spearman_el2n_bpb,
       round(corr(r_grand, r_bpb), 3) AS spearman_grand_bpb
FROM s
GROUP BY domain
ORDER BY median_bits_per_byte DESC
