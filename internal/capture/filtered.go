package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Filtered applies the capture filter expr to a file source, the way the
// kernel applies it to a live one: frames it rejects are skipped. The
// program is compiled for each link type the file uses (a pcapng file may
// mix them); an expression that does not compile for one is an error of
// ReadFrame. Check expr with [CompileFilter] first to refuse it at start.
func Filtered(src Source, expr string) Source {
	return &filteredSource{Source: src, expr: expr, vms: map[LinkType]*bpf.VM{}}
}

type filteredSource struct {
	Source
	expr string
	vms  map[LinkType]*bpf.VM
}

func (f *filteredSource) ReadFrame(fr *Frame) error {
	for {
		if err := f.Source.ReadFrame(fr); err != nil {
			return err
		}
		vm := f.vms[fr.LinkType]
		if vm == nil {
			raw, err := CompileFilter(f.expr, fr.LinkType, DefaultSnaplen)
			if err != nil {
				return fmt.Errorf("capture: filter %q: %w", f.expr, err)
			}
			prog, ok := bpf.Disassemble(raw)
			if !ok {
				return fmt.Errorf("capture: filter %q: %w: program has raw instructions", f.expr, ErrFilter)
			}
			if vm, err = bpf.NewVM(prog); err != nil {
				return fmt.Errorf("capture: filter %q: %w: %v", f.expr, ErrFilter, err)
			}
			f.vms[fr.LinkType] = vm
		}
		if n, err := vm.Run(fr.Data); err == nil && n > 0 {
			return nil
		}
	}
}
