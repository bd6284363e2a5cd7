package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// value parses one variable into its Config field and formats it back.
type value interface {
	set(raw string) error
	String() string
}

var (
	errNotInt   = errors.New("not an integer")
	errNotNum   = errors.New("not a number")
	errNotBool  = errors.New("not a boolean (true/false)")
	errRange    = errors.New("out of range")
	errNotOneOf = errors.New("not one of the allowed values")
)

type stringValue struct{ p *string }

func (v stringValue) set(raw string) error { *v.p = strings.TrimSpace(raw); return nil }
func (v stringValue) String() string       { return *v.p }

// listValue is a comma-separated list; empty items are ignored.
type listValue struct{ p *[]string }

func (v listValue) set(raw string) error {
	var out []string
	for _, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	*v.p = out
	return nil
}

func (v listValue) String() string { return strings.Join(*v.p, ",") }

// intValue is an integer in [min, max].
type intValue struct {
	p        *int
	min, max int
}

func (v intValue) set(raw string) error {
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return errNotInt
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("%w: want %d..%d", errRange, v.min, v.max)
	}
	*v.p = n
	return nil
}

func (v intValue) String() string { return strconv.Itoa(*v.p) }

// int64Value is an integer in [min, max].
type int64Value struct {
	p        *int64
	min, max int64
}

func (v int64Value) set(raw string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return errNotInt
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("%w: want %d..%d", errRange, v.min, v.max)
	}
	*v.p = n
	return nil
}

func (v int64Value) String() string { return strconv.FormatInt(*v.p, 10) }

// uint32Value is an unsigned 32-bit integer.
type uint32Value struct{ p *uint32 }

func (v uint32Value) set(raw string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 32)
	if err != nil {
		return errNotInt
	}
	*v.p = uint32(n)
	return nil
}

func (v uint32Value) String() string { return strconv.FormatUint(uint64(*v.p), 10) }

// floatValue is a finite number in [min, max].
type floatValue struct {
	p        *float64
	min, max float64
}

func (v floatValue) set(raw string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return errNotNum
	}
	if f < v.min || f > v.max {
		return fmt.Errorf("%w: want %g..%g", errRange, v.min, v.max)
	}
	*v.p = f
	return nil
}

func (v floatValue) String() string { return strconv.FormatFloat(*v.p, 'f', -1, 64) }

// durationValue is a number of units (seconds or milliseconds, as the
// variable's name says), fractions allowed, in [min, max] units.
type durationValue struct {
	p        *time.Duration
	unit     time.Duration
	min, max float64
}

func (v durationValue) set(raw string) error {
	var f float64
	if err := (floatValue{p: &f, min: v.min, max: v.max}).set(raw); err != nil {
		return err
	}
	*v.p = time.Duration(f * float64(v.unit))
	return nil
}

func (v durationValue) String() string {
	return strconv.FormatFloat(float64(*v.p)/float64(v.unit), 'f', -1, 64)
}

type boolValue struct{ p *bool }

func (v boolValue) set(raw string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(raw))
	if err != nil {
		return errNotBool
	}
	*v.p = b
	return nil
}

func (v boolValue) String() string { return strconv.FormatBool(*v.p) }

// enumValue is one of allowed, compared case-insensitively and stored as
// spelled in allowed.
type enumValue struct {
	p       *string
	allowed []string
}

func (v enumValue) set(raw string) error {
	raw = strings.TrimSpace(raw)
	for _, a := range v.allowed {
		if strings.EqualFold(raw, a) {
			*v.p = a
			return nil
		}
	}
	return fmt.Errorf("%w: %s", errNotOneOf, strings.Join(v.allowed, ", "))
}

func (v enumValue) String() string { return *v.p }
