package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/storage"
)

// A press is accepted while the consumers' transactions hold every
// connection of the main pool: the request path has connections of its own
// (storage.ForRequests). Before, the token lookup queued behind them, and
// under load a press's 202 waited for a connection. On SQLite the writer is
// what a transaction holds, and a press only reads.
func TestPressAcceptedWhileTransactionsHoldTheMainPool(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		const mainConns = 2
		h := start(t, store, func(c *Config) {
			if store == "postgres" {
				sep := "?"
				if strings.Contains(c.DatabaseURL, "?") {
					sep = "&"
				}
				c.DatabaseURL += fmt.Sprintf("%spool_max_conns=%d", sep, mainConns)
			}
		})
		h.community("c1")
		resident := h.token("resident", "c1", "r1")
		// The token is looked up once before, so a cache could not explain
		// a pass: the press below must read the database again.
		h.press(resident, "k0", "fire", centre)

		holders := mainConns
		if store == "sqlite" {
			holders = 1 // the writer runs one group at a time
		}
		release := make(chan struct{})
		var holding atomic.Int32
		var wg sync.WaitGroup
		for range holders {
			wg.Go(func() {
				err := h.svc.DB.InTx(context.Background(), func(q storage.Querier) error {
					holding.Add(1)
					<-release
					return nil
				})
				if err != nil {
					t.Errorf("holding transaction: %v", err)
				}
			})
		}
		released := false
		defer func() {
			if !released {
				close(release)
			}
			wg.Wait()
		}()
		eventually(t, 10*time.Second, func() bool { return holding.Load() == int32(holders) },
			says("the holding transactions never all started"))

		began := time.Now()
		status, out := h.call("POST", "/v1/alarms", resident,
			map[string]any{"key": "k1", "type": "fire", "location": geo.Offset(centre, 50, 0), "address": "3栋2单元501"})
		took := time.Since(began)
		if status != 202 {
			t.Fatalf("press while the main pool is held: status %d %v, want 202", status, out)
		}
		if took > 3*time.Second {
			t.Errorf("press while the main pool is held took %v", took)
		}
		close(release)
		released = true
		wg.Wait()
		// Nothing accepted is lost: the press becomes part of an incident
		// once the consumers have connections again.
		h.incidentOf(resident, out["alarm_id"].(string))
	})
}
