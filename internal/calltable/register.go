package calltable

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/event"
	"github.com/voipsensor/voipsensor/internal/sip"
)

// RegState is a registration binding's state: the CDR's type, numbered as
// VoIPmonitor's register_state codes.
type RegState = cdr.RegState

// Registration states; RegNone (0) is a binding whose first REGISTER has no
// final response yet.
const (
	RegNone       RegState = 0
	RegOK                  = cdr.RegOK
	RegFailed              = cdr.RegFailed
	RegExpired             = cdr.RegExpired
	RegUnregister          = cdr.RegUnregister
)

type regKey struct {
	aor     string // user@domain of the To header
	contact string // Contact URI of the request
}

// Registration is one observed binding of an address of record to a contact.
// Its fields may be read only with the table's lock held; use
// [Table.Snapshot] elsewhere.
type Registration struct {
	ID           uint64
	User, Domain string // address of record (To)
	FromName     string
	FromUser     string // of the last REGISTER's From
	VLAN         uint16 // of the last REGISTER; decode.NoVLAN when untagged
	Contact      string // contact URI
	AuthUser     string
	UA           string
	Src, Dst     netip.AddrPort // of the last REGISTER
	State        RegState
	StateTime    time.Time // when State was entered
	Expires      int       // seconds granted (or asked, when the reply names none)
	ExpiresAt    time.Time
	Attempts     int           // REGISTER requests in the last transaction chain (auth retries count)
	RRD          time.Duration // first REGISTER of the chain → final response
	LastCode     int
	LastSeen     time.Time

	pending      bool
	challenges   int // 401/407 answers in the current transaction chain
	pendingStart time.Time
	pendingCall  string
	askExpires   int
}

// handleRegister applies a REGISTER request or response. Must hold t.mu.
func (t *Table) handleRegister(m *sip.Message, dg *decode.Datagram) {
	if m.Request {
		t.registerRequest(m, dg)
		return
	}
	r := t.regTxn[string(m.CallID)]
	if r == nil || !r.pending {
		t.stats.SIPOrphans++
		return
	}
	t.recordRegister(r, dg)
	code := m.StatusCode
	if code < 200 {
		return
	}
	r.LastCode = code
	r.LastSeen = dg.Time
	if code == 401 || code == 407 {
		// A challenge: the client retries in the same chain with
		// credentials. A second challenge means they were refused (or
		// never given), and the binding failed, as VoIPmonitor's
		// register_failed counts a REGISTER 401 beyond the first from the
		// same client.
		r.challenges++
		if r.challenges < 2 {
			return
		}
	}
	r.pending = false
	delete(t.regTxn, r.pendingCall)
	r.RRD = dg.Time.Sub(r.pendingStart)
	state := RegFailed
	if code < 300 {
		exp := r.askExpires
		if m.ContactExpires >= 0 && !m.ContactStar {
			exp = m.ContactExpires
		} else if m.Expires >= 0 {
			exp = m.Expires
		}
		if exp < 0 {
			exp = 3600
		}
		if r.askExpires == 0 {
			exp = 0
		}
		r.Expires = exp
		r.ExpiresAt = dg.Time.Add(time.Duration(exp) * time.Second)
		state = RegOK
		if exp == 0 {
			state = RegUnregister
		}
	}
	t.setRegState(r, state, dg.Time)
}

// registerRequest applies a REGISTER request to its registration,
// creating it on the first one. Must hold t.mu.
func (t *Table) registerRequest(m *sip.Message, dg *decode.Datagram) {
	key := regKey{
		aor:     string(m.To.User) + "@" + string(m.To.Host),
		contact: string(m.Contact.URI),
	}
	if m.ContactStar {
		key.contact = "*"
	}
	r := t.regs[key]
	if r == nil {
		if len(t.regs) >= t.cfg.MaxRegistrations {
			t.stats.RegsDropped++
			return
		}
		t.nextReg++
		r = &Registration{
			ID:       t.nextReg,
			User:     string(m.To.User),
			Domain:   t.intern.get(m.To.Host),
			FromName: string(m.From.Display),
			Contact:  key.contact,
		}
		t.regs[key] = r
	}
	if !r.pending || r.pendingCall != string(m.CallID) {
		if r.pending {
			delete(t.regTxn, r.pendingCall)
		}
		r.pending = true
		r.pendingStart = dg.Time
		r.pendingCall = string(m.CallID)
		r.Attempts = 0
		r.challenges = 0
		t.regTxn[r.pendingCall] = r
	}
	r.Attempts++
	t.recordRegister(r, dg)
	r.Src, r.Dst = dg.Flow.Src, dg.Flow.Dst
	r.VLAN = dg.VLAN
	if string(m.From.User) != r.FromUser {
		r.FromUser = string(m.From.User)
	}
	r.LastSeen = dg.Time
	if len(m.UserAgent) > 0 && string(m.UserAgent) != r.UA {
		r.UA = t.intern.get(m.UserAgent)
	}
	if len(m.AuthUser) > 0 && string(m.AuthUser) != r.AuthUser {
		r.AuthUser = string(m.AuthUser)
	}
	r.askExpires = -1
	switch {
	case m.ContactStar:
		r.askExpires = 0
	case m.ContactExpires >= 0:
		r.askExpires = m.ContactExpires
	case m.Expires >= 0:
		r.askExpires = m.Expires
	}
}

// setRegState moves r to state and reports the change. Must hold t.mu.
func (t *Table) setRegState(r *Registration, s RegState, now time.Time) {
	if r.State == s && s != RegFailed {
		return // a refresh: same state, nothing to report
	}
	r.State = s
	r.StateTime = now
	ri := r.info()
	t.outReg = append(t.outReg, ri)
	if t.cfg.Events != nil {
		t.outEv = append(t.outEv, &event.Event{Kind: event.RegChange, Time: now, Reg: &event.Registration{
			User: ri.User, Domain: ri.Domain, Contact: ri.Contact, State: ri.State.String(),
			Expires: ri.Expires, Attempts: ri.Attempts, Code: ri.LastCode, UserAgent: ri.UA,
			Src: ri.Src, Dst: ri.Dst, RRD: ri.RRD,
		}})
	}
}

// expireRegsLocked moves bindings past their expiry to Expired, fails
// transactions that never got a final response, and forgets bindings that
// have been dead for an hour. Must hold t.mu.
//
// The bindings that change state are applied in the order of their keys,
// not the map's, so that the same input reports them in the same order.
func (t *Table) expireRegsLocked(now time.Time) {
	var due []regKey
	for key, r := range t.regs {
		switch {
		case r.pending && now.Sub(r.pendingStart) > t.cfg.RegisterTimeout,
			r.State == RegOK && !r.ExpiresAt.IsZero() && now.After(r.ExpiresAt):
			due = append(due, key)
		case !r.pending && r.State != RegOK && now.Sub(r.LastSeen) > time.Hour:
			delete(t.regs, key)
		}
	}
	slices.SortFunc(due, func(a, b regKey) int {
		return cmp.Or(strings.Compare(a.aor, b.aor), strings.Compare(a.contact, b.contact))
	})
	for _, key := range due {
		r := t.regs[key]
		if r.pending && now.Sub(r.pendingStart) > t.cfg.RegisterTimeout {
			r.pending = false
			delete(t.regTxn, r.pendingCall)
			r.RRD = 0
			t.setRegState(r, RegFailed, now)
		}
		if r.State == RegOK && !r.ExpiresAt.IsZero() && now.After(r.ExpiresAt) {
			t.setRegState(r, RegExpired, r.ExpiresAt)
		}
	}
}
