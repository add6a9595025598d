-- Hourly page views and errors (status 400 or above) per dimension value, for the hours [?2, ?3) of day ?1 (UTC).
-- One scan with grouping sets; the predicate on the partition columns dt/hour prunes to those hours.
-- Each page view counts once: copies of one Kinesis record (a Firehose re-delivery, a row repeated in an
-- object) share (shardid, sequencenumber); a producer's re-sends share an eventid within their event hour.
-- Rows without either identity (written before the columns existed) count once each.
-- Parameters: 1 dt 'YYYY-MM-DD', 2 first hour 'HH', 3 end hour 'HH' (exclusive; '24' ends the day).
SELECT
  bucket_ms,
  CASE
    WHEN grouping(url) = 0 THEN 'url'
    WHEN grouping(country) = 0 THEN 'country'
    WHEN grouping(browser) = 0 THEN 'browser'
    WHEN grouping(status) = 0 THEN 'status'
    ELSE 'total'
  END AS dimension,
  coalesce(url, country, browser, CAST(status AS varchar), 'all') AS value,
  count(*) AS views,
  count_if(status >= 400) AS errors
FROM (
  SELECT created - created % 3600000 AS bucket_ms, url, country, browser, status
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
    WHERE dt = ? AND hour >= ? AND hour < ?
  ) AS records
  WHERE copy = 1
) AS events
GROUP BY GROUPING SETS ((bucket_ms), (bucket_ms, url), (bucket_ms, country), (bucket_ms, browser), (bucket_ms, status))
