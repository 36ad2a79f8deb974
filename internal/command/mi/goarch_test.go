package mi

import "runtime"

func goarch() string { return runtime.GOARCH + "/" + runtime.GOOS }
