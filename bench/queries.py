"""The PromQL query set of the benchmark: (name, expression). Names are stable keys in the
JSON results. The set covers rate, sum by, a 5xx ratio with and without vector matching,
histogram_quantile with and without `sum by (le, ...)`, increase over 1h, avg_over_time, a
comparison filter, topk, and a raw selector."""

QUERIES = [
    ("raw_counter", 'http_requests_total'),
    ("rate_counter", 'rate(http_requests_total[5m])'),
    ("sum_rate", 'sum(rate(http_requests_total[5m]))'),
    ("sum_by_job_rate", 'sum by (job) (rate(http_requests_total[5m]))'),
    ("error_ratio_by_job",
     'sum by (job) (rate(http_requests_total{status=~"5.."}[5m]))'
     ' / sum by (job) (rate(http_requests_total[5m]))'),
    ("error_ratio_group_left",
     'rate(http_requests_total{status=~"5.."}[5m]) / ignoring (status) group_left'
     ' sum without (status) (rate(http_requests_total[5m]))'),
    ("p95_sum_by_le_job",
     'histogram_quantile(0.95, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m])))'),
    ("p95_per_series", 'histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))'),
    ("mean_latency_by_job",
     'sum by (job) (rate(http_request_duration_seconds_sum[5m]))'
     ' / sum by (job) (rate(http_request_duration_seconds_count[5m]))'),
    ("increase_1h", 'increase(http_requests_total[1h])'),
    ("avg_over_time_cpu", 'avg_over_time(cpu_usage_percent[10m])'),
    ("queue_above_100", 'processing_queue_size > 100'),
    ("topk5_instances", 'topk(5, sum by (instance) (rate(http_requests_total[5m])))'),
    ("count_up_by_job", 'count by (job) (up == 1)'),
]
