// Package test holds black-box end-to-end tests: the analyser against
// tshark on real captures, against the generator's ground truth, and (later)
// the daemon against real clients.
package test
