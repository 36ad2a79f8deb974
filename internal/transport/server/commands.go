package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// DefaultFanoutTimeout is the per-sensor time limit of listcalls_all.
const DefaultFanoutTimeout = 3 * time.Second

// AllCalls is the result of listcalls_all: the calls of every sensor that
// answered, one row per call with the sensor's id first, and the sensors
// that did not answer.
type AllCalls struct {
	// Columns is "sensor_id" followed by the listcalls columns (the union
	// over the sensors, in first-seen order).
	Columns []string `json:"columns"`
	// Calls holds one row per call; cells are the sensors' JSON values
	// verbatim, null where a sensor lacks a column.
	Calls [][]json.RawMessage `json:"calls"`
	// Answered lists the sensors whose calls are included.
	Answered []int `json:"answered"`
	// Missing lists the sensors that did not answer in time or failed.
	Missing []MissingSensor `json:"missing"`
}

// MissingSensor is a sensor left out of an aggregated view, and why.
type MissingSensor struct {
	SensorID int    `json:"sensor_id"`
	Error    string `json:"error"`
}

// SensorInfo is one row of active_sensors.
type SensorInfo struct {
	SensorID int       `json:"sensor_id"`
	Name     string    `json:"name"`
	IP       string    `json:"ip"`
	Port     int       `json:"port"`
	Since    time.Time `json:"since"`
}

// Register adds the server's aggregated commands to reg:
//
//   - listcalls_all [timeout_ms]: listcalls on every connected sensor at
//     once, each with the time limit (default [DefaultFanoutTimeout]);
//   - active_sensors: the connected sensors.
func Register(reg *command.Registry, srv *Server) {
	reg.Register(command.Command{
		Name: "listcalls_all", Perm: command.PermCall,
		Doc: "calls in progress on every sensor connected to this server, with the sensors that did not answer",
		Params: []command.Param{{Name: "timeout", Type: command.ParamInt,
			Doc: "per-sensor time limit in milliseconds (default 3000)"}},
		Run: func(ctx context.Context, req *command.Request) (command.Result, error) {
			limit := DefaultFanoutTimeout
			if v, ok := req.Param("timeout"); ok && v != "" {
				ms, _ := strconv.Atoi(v)
				if ms <= 0 {
					return nil, command.BadParam("timeout", errors.New("must be positive"))
				}
				limit = time.Duration(ms) * time.Millisecond
			}
			return command.Value{V: srv.ListCallsAll(ctx, limit)}, nil
		},
	})
	reg.Register(command.Command{
		Name: "active_sensors", Perm: command.PermSystem,
		Doc: "sensors connected to this server over the server API",
		Run: func(ctx context.Context, req *command.Request) (command.Result, error) {
			list := srv.Active()
			out := make([]SensorInfo, 0, len(list))
			for _, s := range list {
				out = append(out, SensorInfo{s.SensorID, s.Name, s.Addr.Addr().Unmap().String(), int(s.Addr.Port()), s.Since})
			}
			return command.Value{V: out}, nil
		},
	})
}

// ListCallsAll relays "listcalls" to every connected sensor in parallel,
// each bounded by limit, and merges the answers.
func (s *Server) ListCallsAll(ctx context.Context, limit time.Duration) AllCalls {
	list := s.Active()
	type answer struct {
		id   int
		rows []json.RawMessage // first element is the header
		err  error
	}
	answers := make([]answer, len(list))
	var wg sync.WaitGroup
	for i, sv := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, limit)
			defer cancel()
			out, err := s.Relay(c, sv.SensorID, "listcalls")
			a := answer{id: sv.SensorID, err: err}
			if err == nil {
				a.rows, a.err = parseTable(out)
			}
			answers[i] = a
		}()
	}
	wg.Wait()
	res := AllCalls{Columns: []string{"sensor_id"}, Calls: [][]json.RawMessage{}, Answered: []int{}, Missing: []MissingSensor{}}
	index := map[string]int{}
	for _, a := range answers {
		if a.err != nil {
			res.Missing = append(res.Missing, MissingSensor{a.id, a.err.Error()})
			continue
		}
		res.Answered = append(res.Answered, a.id)
		var names []string
		json.Unmarshal(a.rows[0], &names) // checked by parseTable
		for _, n := range names {
			if _, ok := index[n]; !ok {
				index[n] = len(res.Columns)
				res.Columns = append(res.Columns, n)
			}
		}
		for _, r := range a.rows[1:] {
			var cells []json.RawMessage
			json.Unmarshal(r, &cells)
			row := make([]json.RawMessage, len(res.Columns))
			row[0] = json.RawMessage(strconv.Itoa(a.id))
			for j, n := range names {
				if j < len(cells) {
					row[index[n]] = cells[j]
				}
			}
			res.Calls = append(res.Calls, row)
		}
	}
	// Rows built before a later sensor added columns are padded with null.
	for i, r := range res.Calls {
		for len(r) < len(res.Columns) {
			r = append(r, nil)
		}
		for j := range r {
			if r[j] == nil {
				r[j] = json.RawMessage("null")
			}
		}
		res.Calls[i] = r
	}
	sort.Ints(res.Answered)
	return res
}

// parseTable splits a legacy table reply [[header],[{totals}]?,[row]…]
// into its header and rows (the totals element is dropped).
func parseTable(b []byte) ([]json.RawMessage, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil || len(elems) == 0 {
		return nil, fmt.Errorf("server: sensor answered %.80q", b)
	}
	var header []string
	if err := json.Unmarshal(elems[0], &header); err != nil {
		return nil, fmt.Errorf("server: bad listcalls header: %w", err)
	}
	out := []json.RawMessage{elems[0]}
	for _, e := range elems[1:] {
		var cells []json.RawMessage
		if err := json.Unmarshal(e, &cells); err != nil {
			return nil, fmt.Errorf("server: bad listcalls row: %w", err)
		}
		if len(cells) == 1 && len(cells[0]) > 0 && cells[0][0] == '{' {
			continue // totals
		}
		out = append(out, e)
	}
	return out, nil
}
