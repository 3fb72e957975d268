package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// The floor: go-ipmi's client in a plain loop, no CLI, no inventory, no
// engine, one client per session (go-ipmi's client must not be shared),
// floorInFlight sessions at once, each open + Get Chassis Status + close.
// It runs in a child process of the bench (the bench binary re-executed
// with -floor-child), so it is measured exactly like the CLI clients: its
// own process and Go runtime beside the simulator's, its own peak RSS. Its
// time is the loop's, read from its output: process start-up is not part
// of the floor.
const floorInFlight = 64

// floorResult is what the child prints.
type floorResult struct {
	LoopSeconds float64 `json:"loop_seconds"`
	Answered    int     `json:"answered"`
	Failed      int     `json:"failed"`
	FirstError  string  `json:"first_error,omitempty"`
}

// floorChild runs the loop over the IPs in ipFile (one per line) and
// prints a floorResult. The password comes from $RMM_BENCH_PASSWORD.
func floorChild(ipFile string, port int, suite int, w io.Writer) error {
	b, err := os.ReadFile(ipFile)
	if err != nil {
		return err
	}
	ips := strings.Fields(string(b))
	pass := os.Getenv(passwordEnv)
	var answered, failed atomic.Int64
	var firstErr sync.Once
	var firstMsg string
	sem := make(chan struct{}, floorInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	for _, ip := range ips {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			on, err := floorOne(ip, port, suite, pass)
			if err != nil {
				failed.Add(1)
				firstErr.Do(func() { firstMsg = fmt.Sprintf("%s: %v", ip, err) })
				return
			}
			_ = on
			answered.Add(1)
		}()
	}
	wg.Wait()
	res := floorResult{LoopSeconds: time.Since(start).Seconds(), Answered: int(answered.Load()), Failed: int(failed.Load()), FirstError: firstMsg}
	return json.NewEncoder(w).Encode(res)
}

// floorOne is one session: open, Get Chassis Status, close.
func floorOne(ip string, port, suite int, pass string) (bool, error) {
	c, err := client.NewClient(ip, port, benchUser, pass)
	if err != nil {
		return false, err
	}
	c.WithCipherSuiteID(types.CipherSuiteID(suite)).WithTimeout(2 * time.Second).WithRetry(2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		// go-ipmi leaks the socket of a failed Connect unless closed, and
		// Close with a live context waits a whole timeout chain.
		dead, stop := context.WithCancel(context.Background())
		stop()
		_ = c.Close(dead)
		return false, err
	}
	st, err := c.GetChassisStatus(ctx)
	cerr := c.Close(ctx)
	if err != nil {
		return false, err
	}
	if cerr != nil {
		return false, cerr
	}
	return st.PowerIsOn, nil
}

// floorCount and floorInner read the child's output.
func floorCount(b []byte) int {
	var r floorResult
	if json.Unmarshal(b, &r) != nil {
		return 0
	}
	return r.Answered
}

func floorInner(b []byte) (time.Duration, error) {
	var r floorResult
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	return time.Duration(r.LoopSeconds * float64(time.Second)), nil
}
