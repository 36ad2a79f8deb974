// Package report renders calls and registrations for people and programs:
// the JSON Lines schema of `voipsensor read --json` and the terminal tables.
//
// Allowed imports: calltable, rtp (for the statistics it renders).
package report
