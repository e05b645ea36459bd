-- Why records were refused at ingest, where the first one of each kind was, and an example.
SELECT
    corpus, input, reason,
    sum(count)                      AS records,
    min(position)                   AS first_position,
    any_value(unit)                 AS unit,
    any_value(detail)               AS example_detail
FROM quarantine
GROUP BY corpus, input, reason
ORDER BY records DESC;
