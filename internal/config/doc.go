// Package config owns the sensor's configuration schema, its defaults and its
// validation, and reads voipmonitor.conf-style files.
//
// A file is a list of `key = value` lines. Lines starting with `#` or `;`
// are comments, `[section]` headers are accepted and recorded but do not
// scope keys, and option names are VoIPmonitor's where VoIPmonitor has the
// option (`sipport`, `managerport`, `mysqlhost`, …). Values are taken
// verbatim after trimming spaces (so passwords may contain `#` and `;`); one
// pair of surrounding double quotes is removed.
//
// A [Config] is a plain value: it is built once by [Load] or [Parse],
// adjusted by [Config.Set] for command-line overrides, checked by
// [Config.Validate] and passed down. It is never read as a global.
//
// Allowed imports: nothing internal.
package config
