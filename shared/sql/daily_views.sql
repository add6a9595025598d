-- Daily page views per dimension value, for the whole days [?1, ?2) (UTC).
-- One scan with grouping sets; the predicate on the partition column dt prunes to those days.
-- Each page view counts once, exactly as in hourly_views.sql (the same identity, deduplicated per event hour),
-- so a day's count is the sum of its hours'.
-- Parameters: 1 first day 'YYYY-MM-DD', 2 end day 'YYYY-MM-DD' (exclusive).
SELECT
  CAST(to_unixtime(day_start) AS bigint) * 1000 AS bucket_ms,
  CASE
    WHEN grouping(url) = 0 THEN 'url'
    WHEN grouping(country) = 0 THEN 'country'
    WHEN grouping(browser) = 0 THEN 'browser'
    WHEN grouping(status) = 0 THEN 'status'
    ELSE 'total'
  END AS dimension,
  coalesce(url, country, browser, CAST(status AS varchar), 'all') AS value,
  count(*) AS views
FROM (
  SELECT date_trunc('day', from_unixtime(created / 1000)) AS day_start, url, country, browser, status
  FROM (
    SELECT
      created, url, country, browser, status,
      CASE
        WHEN eventid IS NULL AND sequencenumber IS NULL THEN 1
        ELSE row_number() OVER (
          PARTITION BY dt, hour, coalesce('e:' || eventid, 'k:' || shardid || '/' || sequencenumber)
          ORDER BY shardid, sequencenumber
        )
      END AS copy
    FROM raw_events
    WHERE dt >= ? AND dt < ?
  ) AS records
  WHERE copy = 1
) AS events
GROUP BY GROUPING SETS ((day_start), (day_start, url), (day_start, country), (day_start, browser), (day_start, status))
