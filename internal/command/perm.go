package command

import (
	"fmt"
	"math/bits"
	"strings"
)

// Perm is a bitmask of permission classes. The class names match the
// Asterisk AMI classes so that the AMI transport can map its read/write
// grants onto them one to one; the manager and MI listeners grant a fixed
// set per listener.
type Perm uint32

// Permission classes, one bit each, named after the AMI classes.
const (
	PermSystem Perm = 1 << iota
	PermCall
	PermLog
	PermVerbose
	PermCommand
	PermAgent
	PermUser
	PermConfig
	PermDTMF
	PermReporting
	PermCDR
	PermDialplan
	PermOriginate
	PermAGI
	PermCC
	PermAOC
	PermTest
	PermSecurity
	PermMessage

	permEnd // first unused bit
)

// PermAll grants every known class.
const PermAll = permEnd - 1

var permNames = [...]string{
	"system", "call", "log", "verbose", "command", "agent", "user", "config",
	"dtmf", "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc",
	"test", "security", "message",
}

// Valid reports whether p is non-zero and uses only known classes.
func (p Perm) Valid() bool { return p != 0 && p&^PermAll == 0 }

// Has reports whether p grants every class in need.
func (p Perm) Has(need Perm) bool { return p&need == need }

// String returns the comma-separated AMI class names of p ("system,call"),
// "none" for zero, "all" for [PermAll], and a hex tail for unknown bits.
func (p Perm) String() string {
	switch p {
	case 0:
		return "none"
	case PermAll:
		return "all"
	}
	var names []string
	for q := p & PermAll; q != 0; q &= q - 1 {
		names = append(names, permNames[bits.TrailingZeros32(uint32(q))])
	}
	if u := p &^ PermAll; u != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint32(u)))
	}
	return strings.Join(names, ",")
}

// ParsePerm turns a comma-separated list of class names (case-insensitive,
// spaces ignored, "all" and "none" allowed) into a Perm.
func ParsePerm(s string) (Perm, error) {
	var p Perm
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		switch f {
		case "", "none":
			continue
		case "all":
			p |= PermAll
			continue
		}
		found := false
		for i, n := range permNames {
			if n == f {
				p |= 1 << i
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("command: unknown permission class %q", f)
		}
	}
	return p, nil
}
