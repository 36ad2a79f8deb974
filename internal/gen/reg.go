package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Registration outcomes as written into the truth.
const (
	regOK         = "OK"
	regFailed     = "Failed"
	regUnregister = "Unregister"
)

type regEvent struct {
	t       int64
	attempt int // 1 or 2; 0 for responses
	code    int // response code, 0 for a REGISTER
}

var registrarEP = endpoint{ip: [4]byte{10, 0, 0, 2}, port: sipPort}

// registration is one REGISTER transaction sequence (RFC 3261 section 10),
// optionally challenged with 401 (RFC 2617 digest) first.
type registration struct {
	user, callID, fromTag, toTag, nonce, ua string
	uaEP, server                            endpoint
	expires                                 int // requested
	branch                                  [2]string
	events                                  []regEvent
	ev                                      int
	truth                                   *regTruth
}

func newRegistration(g *generator, i int, t int64) *registration {
	rng := rand.New(rand.NewPCG(uint64(g.cfg.Seed), uint64(i)<<8|0x7e))
	hex := func() string { return strconv.FormatUint(rng.Uint64()>>16, 16) }
	h := (i + g.cfg.AddrOffset) % 65000
	r := &registration{
		user:    strconv.Itoa(100000 + i),
		uaEP:    endpoint{ip: [4]byte{10, 3, byte((h + 1) >> 8), byte(h + 1)}, port: sipPort},
		server:  registrarEP,
		fromTag: hex(), toTag: hex(), nonce: hex() + hex(),
		ua:     userAgents[rng.IntN(len(userAgents))],
		branch: [2]string{hex(), hex()},
	}
	if g.cfg.Proxy {
		r.server = proxyEP
	}
	r.callID = fmt.Sprintf("reg-%016x-%d@%s", rng.Uint64(), i, sipDomain)
	r.truth = &regTruth{User: r.user, Contact: "sip:" + r.user + "@" + r.uaEP.host() + ":5060"}
	ms := func(lo, hi int) int64 { return int64(lo*1000+rng.IntN((hi-lo)*1000+1)) * 1000 }
	add := func(attempt, code int) { r.events = append(r.events, regEvent{t, attempt, code}) }
	challenge := func() {
		add(1, 0)
		t += ms(2, 30)
		add(0, 401)
		t += ms(2, 30)
		add(2, 0)
		t += ms(2, 30)
		r.truth.Attempts = 2
	}
	r.expires = [...]int{60, 300, 3600}[rng.IntN(3)]
	switch u := rng.Float64(); {
	case u < g.cfg.RegisterFailed:
		challenge()
		add(0, 403)
		r.truth.State = regFailed
	case rng.IntN(5) == 0:
		r.expires = 0
		challenge()
		add(0, 200)
		r.truth.State = regUnregister
	case rng.IntN(2) == 0:
		challenge()
		add(0, 200)
		r.truth.State, r.truth.Expires = regOK, r.expires
	default:
		add(1, 0)
		t += ms(2, 30)
		add(0, 200)
		r.truth.State, r.truth.Expires, r.truth.Attempts = regOK, r.expires, 1
	}
	g.regs = append(g.regs, r.truth)
	return r
}

func (r *registration) next() int64 {
	if r.ev >= len(r.events) {
		return math.MaxInt64
	}
	return r.events[r.ev].t
}

func (r *registration) step(g *generator) {
	e := r.events[r.ev]
	r.ev++
	b := g.scratch[:0]
	aor := "<sip:" + r.user + "@" + sipDomain + ">"
	attempt := e.attempt
	if e.code != 0 {
		attempt = r.events[r.ev-2].attempt // the REGISTER this answers
		b = appendStatusLine(b, e.code)
	} else {
		b = append(b, "REGISTER sip:"+sipDomain+" SIP/2.0\r\n"...)
	}
	b = appendVia(b, r.uaEP.host(), r.branch[attempt-1])
	if e.code == 0 {
		b = appendHeader(b, "Max-Forwards", "70")
	}
	b = appendHeader(b, "From", aor, ";tag=", r.fromTag)
	if e.code == 0 {
		b = appendHeader(b, "To", aor)
	} else {
		b = appendHeader(b, "To", aor, ";tag=", r.toTag)
	}
	b = appendHeader(b, "Call-ID", r.callID)
	b = appendHeader(b, "CSeq", strconv.Itoa(attempt), " REGISTER")
	contact := "<" + r.truth.Contact + ">"
	switch e.code {
	case 0:
		b = appendHeader(b, "Contact", contact)
		b = appendHeader(b, "Expires", strconv.Itoa(r.expires))
		if attempt == 2 {
			b = appendHeader(b, "Authorization", `Digest username="`+r.user+`", realm="`+authRealm+
				`", nonce="`+r.nonce+`", uri="sip:`+sipDomain+`", response="`+fmt.Sprintf("%032x", r.nonce)[:32]+`", algorithm=MD5`)
		}
		b = appendHeader(b, "User-Agent", r.ua)
	case 401:
		b = appendHeader(b, "WWW-Authenticate", `Digest realm="`+authRealm+`", nonce="`+r.nonce+`", algorithm=MD5`)
	case 200:
		if r.expires > 0 {
			b = appendHeader(b, "Contact", contact, ";expires=", strconv.Itoa(r.expires))
		}
	}
	b = appendBody(b, "", nil)
	g.scratch = b
	if e.code == 0 {
		g.sendUDP(e.t, r.uaEP, r.server, b)
	} else {
		g.sendUDP(e.t, r.server, r.uaEP, b)
	}
}

// regSpawner starts registrations evenly spread with a random phase.
type regSpawner struct {
	n, i int
	gap  float64 // ns between registrations
	rng  *rand.Rand
}

func (s *regSpawner) at(i int) int64 {
	return int64((float64(i)*s.gap)/1000) * 1000
}

func (s *regSpawner) next() int64 {
	if s.i >= s.n {
		return math.MaxInt64
	}
	return s.at(s.i)
}

func (s *regSpawner) step(g *generator) {
	g.schedule(newRegistration(g, s.i, s.at(s.i)+int64(s.rng.Float64()*s.gap/2/1000)*1000))
	s.i++
}
