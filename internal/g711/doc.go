// Package g711 implements the ITU-T G.711 companding laws: µ-law (PCMU, RTP
// payload type 0) and A-law (PCMA, payload type 8), converting between 8-bit
// code words and 16-bit linear PCM.
//
// Encoding follows the ITU-T G.191 reference (software tools library):
// negative inputs are taken in one's complement, so -1 encodes like 0 and
// the mapping is symmetric. Decoding uses 256-entry tables built once at
// package initialisation from the closed-form expansion in G.711 tables 1a/2a.
//
// All functions are pure and safe for concurrent use.
//
// Allowed imports: standard library only (a leaf package).
package g711
