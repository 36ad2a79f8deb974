// Package mi implements the OpenSIPS Management Interface command set that
// makes sense for a passive sensor: the core commands (uptime, version,
// pwd, arg, which, ps, log_level), the statistics commands
// (get_statistics, list_statistics, reset_statistics,
// reset_all_statistics) over counters named "group:name", dialogs in MI
// shape (dlg_list, dlg_list_ctx; one dialog by callid) and registrations
// in usrloc shape (ul_dump, ul_show_contact), plus the OpenSIPS 4.0
// canonical names (core:uptime, statistics:get, dialog:list, usrloc:dump)
// and Kamailio's dotted names (core.uptime, core.version, stats.get_statistics,
// stats.fetch, dlg.list, ul.dump, system.listMethods).
//
// Data comes through the small interfaces declared here ([StatSource],
// [DialogSource], [ContactSource], [LogLevel]); the sensor adapts its
// counters and call table to them.
//
// Allowed imports: command and the standard library. It never imports a
// transport.
package mi
