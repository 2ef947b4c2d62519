-- Athena table over the Parquet objects Shardline's S3 sink writes:
--   s3://<bucket>/metrics/year=YYYY/month=MM/day=DD/<shard>-<first seq>-<last seq>.parquet
-- The first seven columns are the seed's table with the seed's types, so the seed's queries
-- (from_unixtime(timestamp), AVG(value), ...) run unchanged. Partition projection means no
-- MSCK REPAIR / crawler is needed as days are added.
CREATE DATABASE IF NOT EXISTS infra_monitoring;

CREATE EXTERNAL TABLE IF NOT EXISTS infra_monitoring.metrics (
  metric_id       STRING,
  metric_type     STRING,
  `timestamp`     BIGINT,
  value           DOUBLE,
  instance_id     STRING,
  region          STRING,
  collected_at    STRING,
  event_time      TIMESTAMP,
  unit            STRING,
  shard_id        STRING,
  sequence_number STRING,
  arrival_time    TIMESTAMP
)
PARTITIONED BY (year STRING, month STRING, day STRING)
STORED AS PARQUET
LOCATION 's3://infra-monitoring-pipeline-data/metrics/'
TBLPROPERTIES (
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'true',
  'projection.year.type' = 'integer',
  'projection.year.range' = '2024,2099',
  'projection.year.digits' = '4',
  'projection.month.type' = 'integer',
  'projection.month.range' = '1,12',
  'projection.month.digits' = '2',
  'projection.day.type' = 'integer',
  'projection.day.range' = '1,31',
  'projection.day.digits' = '2',
  'storage.location.template' = 's3://infra-monitoring-pipeline-data/metrics/year=${year}/month=${month}/day=${day}/'
);
