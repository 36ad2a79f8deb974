package calltable

// maxInterned bounds the distinct strings a table shares; maxInternLen is
// the longest string it shares.
const (
	maxInterned  = 4096
	maxInternLen = 128
)

// interner shares the strings that repeat from call to call: User-Agent
// and Server values, domains, reason phrases. A busy sensor sees a handful
// of each across 100,000 calls, so one copy each instead of one per call
// saves memory and, more to the point, lets a listing of every call read
// them from cache instead of from 100,000 scattered places (listcalls
// renders every one of them). It holds at most maxInterned strings; once
// full, new values are copied as before, so traffic full of unique values
// cannot grow it without bound. Used with the table lock held.
type interner map[string]string

func (in interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := in[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(in) < maxInterned {
		in[s] = s
	}
	return s
}
