package httpserver

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestAdminDisabledWithoutToken(t *testing.T) {
	f := newFixture(t, func(d *Deps) {
		d.ClearReplay = func(context.Context) error { t.Error("called"); return nil }
	})
	for _, p := range []string{"/api/admin/replay/clear", "/api/admin/partitions/0/resume"} {
		if w := f.do(t, "POST", p, "", map[string]string{"Authorization": "Bearer x"}); w.Code != 403 {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
}

func TestAdminEndpoints(t *testing.T) {
	var cleared int
	var resumed []int32
	resumeErr := map[int32]error{
		7: fmt.Errorf("kafka: p7: %w", ErrNotPaused),
		9: fmt.Errorf("kafka: p9: %w", ErrUnknownPartition),
		5: errors.New("broker down"),
	}
	f := newFixture(t, func(d *Deps) {
		d.AdminToken = "tok"
		d.ClearReplay = func(context.Context) error { cleared++; return nil }
		d.ResumePartition = func(_ context.Context, p int32) error {
			if err := resumeErr[p]; err != nil {
				return err
			}
			resumed = append(resumed, p)
			return nil
		}
	})
	ok := map[string]string{"Authorization": "Bearer tok"}
	cases := []struct {
		path string
		hdr  map[string]string
		code int
	}{
		{"/api/admin/replay/clear", nil, 401},
		{"/api/admin/replay/clear", map[string]string{"Authorization": "Bearer nope"}, 403},
		{"/api/admin/replay/clear", ok, 200},
		{"/api/admin/partitions/3/resume", nil, 401},
		{"/api/admin/partitions/3/resume", ok, 200},
		{"/api/admin/partitions/x/resume", ok, 400},
		{"/api/admin/partitions/-1/resume", ok, 400},
		{"/api/admin/partitions/99999999999/resume", ok, 400},
		{"/api/admin/partitions/7/resume", ok, 409},
		{"/api/admin/partitions/9/resume", ok, 404},
		{"/api/admin/partitions/5/resume", ok, 500},
	}
	for _, tc := range cases {
		if w := f.do(t, "POST", tc.path, "", tc.hdr); w.Code != tc.code {
			t.Errorf("%s %v: %d, want %d (%s)", tc.path, tc.hdr, w.Code, tc.code, w.Body)
		}
	}
	if cleared != 1 || len(resumed) != 1 || resumed[0] != 3 {
		t.Fatalf("cleared %d resumed %v", cleared, resumed)
	}
}

func TestAdminCallbacksMissingOrFailing(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.AdminToken = "tok" })
	ok := map[string]string{"Authorization": "Bearer tok"}
	if w := f.do(t, "POST", "/api/admin/replay/clear", "", ok); w.Code != 501 {
		t.Errorf("nil clear: %d", w.Code)
	}
	if w := f.do(t, "POST", "/api/admin/partitions/1/resume", "", ok); w.Code != 501 {
		t.Errorf("nil resume: %d", w.Code)
	}
	g := newFixture(t, func(d *Deps) {
		d.AdminToken = "tok"
		d.ClearReplay = func(context.Context) error { return errors.New("redis down") }
	})
	if w := g.do(t, "POST", "/api/admin/replay/clear", "", ok); w.Code != 500 {
		t.Errorf("failing clear: %d", w.Code)
	}
}
