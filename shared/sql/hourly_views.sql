-- Hourly page views, errors (status 400 or above) and visitor sketches per site and dimension value, for the hours
-- from parameter 3 up to parameter 4 of the day in parameter 2 (UTC). Every row belongs to one site: nothing of
-- one site is summed into another's (docs/sites.md). One scan with grouping sets per (value, visitor), then counts and sketches from
-- those; the predicate on the partition columns dt/hour prunes.
-- Each page view counts once: copies of one Kinesis record (a Firehose re-delivery, a row repeated in an
-- object) share (shardid, sequencenumber); a producer's re-sends share an eventid within their event hour.
-- Rows without either identity (written before the columns existed) count once each. Identities are per site.
-- Rows without a site (written before the column existed) belong to the default site, parameter 1.
-- Visitors: per row a sketch of the distinct userhash values (shared/sketch): the hashes themselves up to 256,
-- else HyperLogLog registers (index * 64 + rho), computed with bit arithmetic only (shared/sketch/sql.ts).
-- The rows of dimension 'cube' are the filter cube's (docs/filters.md, shared/batch/cube.ts): per site, the page views
-- grouped by hour, every dimension value and visitor hash, with the values packed in DIMENSIONS order
-- (shared/event.ts) and the hash last, joined by the unit separator chr(31), which no accepted value holds.
-- Parameters: 1 default site, 2 dt 'YYYY-MM-DD', 3 first hour 'HH', 4 end hour 'HH' (exclusive; '24' ends the day).
WITH sited AS (
  SELECT *, coalesce(site, ?) AS site_value
  FROM raw_events
  WHERE dt = ? AND hour >= ? AND hour < ?
),
records AS (
  SELECT
    site_value, created, url, country, browser, status, userhash,
    -- Dimension values of fields an event may lack, as shared/event.ts dimensionValue() names them.
    coalesce(referrer, '(none)') AS referrer_value,
    coalesce(source, 'Direct / None') AS source_value,
    coalesce(utmsource, '(none)') AS utm_source_value,
    coalesce(utmmedium, '(none)') AS utm_medium_value,
    coalesce(utmcampaign, '(none)') AS utm_campaign_value,
    coalesce(device, 'other') AS device_value,
    coalesce(os, 'Other') AS os_value,
    CASE
      WHEN eventid IS NULL AND sequencenumber IS NULL THEN 1
      ELSE row_number() OVER (
        PARTITION BY dt, hour, site_value, coalesce('e:' || eventid, 'k:' || shardid || '/' || sequencenumber)
        ORDER BY shardid, sequencenumber
      )
    END AS copy
  FROM sited
),
events AS (
  SELECT
    site_value, created - created % 3600000 AS bucket_ms, url, country, browser, status, userhash, referrer_value,
    source_value, utm_source_value, utm_medium_value, utm_campaign_value, device_value, os_value
  FROM records
  WHERE copy = 1
),
sketch_input AS (
  SELECT
    site_value,
    bucket_ms,
    CASE
      WHEN grouping(url) = 0 THEN 'url'
      WHEN grouping(country) = 0 THEN 'country'
      WHEN grouping(browser) = 0 THEN 'browser'
      WHEN grouping(status) = 0 THEN 'status'
      WHEN grouping(referrer_value) = 0 THEN 'referrer'
      WHEN grouping(source_value) = 0 THEN 'source'
      WHEN grouping(utm_source_value) = 0 THEN 'utm_source'
      WHEN grouping(utm_medium_value) = 0 THEN 'utm_medium'
      WHEN grouping(utm_campaign_value) = 0 THEN 'utm_campaign'
      WHEN grouping(device_value) = 0 THEN 'device'
      WHEN grouping(os_value) = 0 THEN 'os'
      ELSE 'total'
    END AS dimension,
    coalesce(
      url, country, browser, CAST(status AS varchar), referrer_value, source_value, utm_source_value,
      utm_medium_value, utm_campaign_value, device_value, os_value, 'all'
    ) AS value,
    userhash,
    count(*) AS views,
    count_if(status >= 400) AS errors
  FROM events
  GROUP BY GROUPING SETS (
    (site_value, bucket_ms, userhash), (site_value, bucket_ms, url, userhash), (site_value, bucket_ms, country, userhash),
    (site_value, bucket_ms, browser, userhash), (site_value, bucket_ms, status, userhash), (site_value, bucket_ms, referrer_value, userhash),
    (site_value, bucket_ms, source_value, userhash), (site_value, bucket_ms, utm_source_value, userhash),
    (site_value, bucket_ms, utm_medium_value, userhash), (site_value, bucket_ms, utm_campaign_value, userhash),
    (site_value, bucket_ms, device_value, userhash), (site_value, bucket_ms, os_value, userhash)
  )
),
counts AS (
  SELECT site_value, bucket_ms, dimension, value, sum(views) AS views, sum(errors) AS errors
  FROM sketch_input
  GROUP BY site_value, bucket_ms, dimension, value
),
sketch_hashes AS (
  SELECT site_value, bucket_ms, dimension, value, userhash, count(*) OVER (PARTITION BY site_value, bucket_ms, dimension, value) AS distinct_hashes
  FROM (SELECT DISTINCT site_value, bucket_ms, dimension, value, userhash FROM sketch_input WHERE userhash IS NOT NULL) AS sketch_distinct
),
sketch_registers AS (
  SELECT site_value, bucket_ms, dimension, value, register_index, max(rho) AS rho
  FROM (
    SELECT site_value, bucket_ms, dimension, value, bitwise_right_shift(userhash, 38) AS register_index, 33 - CAST(floor(log2(CAST(2 * bitwise_and(bitwise_right_shift(userhash, 6), 4294967295) + 1 AS double))) AS bigint) AS rho
    FROM sketch_hashes
    WHERE distinct_hashes > 256
  ) AS sketch_rho
  GROUP BY site_value, bucket_ms, dimension, value, register_index
),
sketches AS (
  SELECT site_value, bucket_ms, dimension, value, 'sparse' AS sketch_form, array_sort(array_agg(userhash)) AS sketch
  FROM sketch_hashes
  WHERE distinct_hashes <= 256
  GROUP BY site_value, bucket_ms, dimension, value
  UNION ALL
  SELECT site_value, bucket_ms, dimension, value, 'dense' AS sketch_form, array_sort(array_agg(register_index * 64 + rho)) AS sketch
  FROM sketch_registers
  GROUP BY site_value, bucket_ms, dimension, value
)
SELECT counts.site_value AS site, counts.bucket_ms, counts.dimension, counts.value, counts.views, counts.errors, sketches.sketch_form, sketches.sketch
FROM counts
LEFT JOIN sketches
  ON sketches.site_value = counts.site_value AND sketches.bucket_ms = counts.bucket_ms AND sketches.dimension = counts.dimension AND sketches.value = counts.value
UNION ALL
SELECT
  site_value AS site,
  bucket_ms,
  'cube' AS dimension,
  concat_ws(
    chr(31), url, country, browser, CAST(status AS varchar), referrer_value, source_value, utm_source_value,
    utm_medium_value, utm_campaign_value, device_value, os_value, coalesce(CAST(userhash AS varchar), '')
  ) AS value,
  count(*) AS views,
  count_if(status >= 400) AS errors,
  NULL AS sketch_form,
  NULL AS sketch
FROM events
GROUP BY
  site_value, bucket_ms, url, country, browser, status, referrer_value, source_value, utm_source_value,
  utm_medium_value, utm_campaign_value, device_value, os_value, userhash
