// Package errdefs holds the few domain errors every capability returns and
// the API maps to HTTP status in one place.
package errdefs

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

var (
	// ErrNotFound: the thing does not exist, or the caller may not know it does.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request clashes with the current state.
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: a dependency (bus, database) cannot take the request
	// now; the client should retry with the same idempotency key.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// ValidationError lists what is wrong with a request, field by field.
type ValidationError struct {
	Fields map[string]string
}

// Invalid starts a ValidationError with one field.
func Invalid(field, problem string) *ValidationError {
	return &ValidationError{Fields: map[string]string{field: problem}}
}

// Add records a problem with a field; the first problem per field wins.
func (e *ValidationError) Add(field, problem string) {
	if e.Fields == nil {
		e.Fields = map[string]string{}
	}
	if _, ok := e.Fields[field]; !ok {
		e.Fields[field] = problem
	}
}

// OrNil returns nil when no field was added, so callers can build one up and
// return it unconditionally.
func (e *ValidationError) OrNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %s", k, e.Fields[k])
	}
	return "invalid " + strings.Join(parts, "; ")
}
