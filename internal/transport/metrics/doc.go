// Package metrics serves the sensor's figures to Prometheus on
// metrics_bind (default 127.0.0.1:9102, GET /metrics), rendered with
// prometheus/client_golang, the field's standard library for the
// exposition format. Every scrape runs the registry's `metrics` command,
// so the figures come through the one door and the one permission check
// like every other transport's. It follows the sensor's listener policy:
// loopback by default, metrics_token (Bearer) required off loopback,
// Host/Origin checks (httpauth.Guard).
//
// Allowed imports: internal/command, internal/transport/httpauth and
// internal/transport/conn (STYLE.md §2).
package metrics
