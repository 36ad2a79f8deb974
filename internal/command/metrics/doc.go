// Package metrics is the command group behind the Prometheus endpoint and
// the console's charts: `metrics` returns every counter, gauge and
// histogram of the sensor as transport-neutral metric families, and
// `quality_history` the rolling last hour, minute by minute (calls in
// progress, attempts, answer and network-effectiveness ratios, MOS
// distribution).
//
// Allowed imports: internal/command (STYLE.md §2: command groups import
// command and never a transport).
package metrics
