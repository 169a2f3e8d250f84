package links_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/links"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

func TestLinks(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
		token, err := links.Issue(ctx, db, links.KindOffer, "of_1", "c1", "zh-CN", now, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(token) != 16 {
			t.Fatalf("token %q: want 16 characters, short enough for a text", token)
		}
		var stored string
		if err := db.QueryRow(ctx, `SELECT hash FROM links`).Scan(&stored); err != nil || stored == token {
			t.Fatalf("the token itself must not be stored (stored %q, err %v)", stored, err)
		}
		l, err := links.Resolve(ctx, db, token, now.Add(59*time.Minute))
		if err != nil || l.Kind != links.KindOffer || l.Target != "of_1" || l.Community != "c1" {
			t.Fatalf("resolve: %+v %v", l, err)
		}
		if err := links.MarkUsed(ctx, db, token, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		_ = links.MarkUsed(ctx, db, token, now.Add(2*time.Minute))
		l, _ = links.Resolve(ctx, db, token, now.Add(3*time.Minute))
		if !l.UsedAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("first use at %v, want %v", l.UsedAt, now.Add(time.Minute))
		}
		if l, err := links.Resolve(ctx, db, token, now.Add(time.Hour)); !errors.Is(err, links.ErrExpired) || l.Target != "of_1" {
			t.Fatalf("at expiry: %+v %v, want ErrExpired with the link", l, err)
		}
		for _, bad := range []string{"", "short", token + "x", "AAAAAAAAAAAAAAAA"} {
			if _, err := links.Resolve(ctx, db, bad, now); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("token %q: %v, want not found", bad, err)
			}
		}
	})
}

// A single-use link works once: of two uses only the first gets the link,
// and an expired one is not used up.
func TestConsumeOnce(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
		token, err := links.Issue(ctx, db, links.KindLogin, "res-1", "c1", "zh-CN", now, now.Add(15*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		l, err := links.Consume(ctx, db, token, now.Add(time.Minute))
		if err != nil || l.Kind != links.KindLogin || l.Target != "res-1" || !l.UsedAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("first use: %+v %v", l, err)
		}
		if _, err := links.Consume(ctx, db, token, now.Add(2*time.Minute)); !errors.Is(err, links.ErrUsed) {
			t.Fatalf("second use: %v, want ErrUsed", err)
		}
		late, err := links.Issue(ctx, db, links.KindLogin, "res-1", "c1", "zh-CN", now, now.Add(15*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := links.Consume(ctx, db, late, now.Add(15*time.Minute)); !errors.Is(err, links.ErrExpired) {
			t.Fatalf("at expiry: %v, want ErrExpired", err)
		}
		if l, _ := links.Resolve(ctx, db, late, now); !l.UsedAt.IsZero() {
			t.Fatalf("an expired link was marked used: %+v", l)
		}
	})
}
