package api

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/plans"
)

// errorBody is the one error shape: {"error": {"code", "message", "fields"}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	// Problems lists every error in a document with its line (plans).
	Problems plans.Problems `json:"problems,omitempty"`
}

// httpError is an error a handler raises with its own status and code.
type httpError struct {
	status  int
	code    string
	message string
	fields  map[string]string
}

func (e *httpError) Error() string { return e.message }

func newError(status int, code, message string) error {
	return &httpError{status: status, code: code, message: message}
}

func fieldError(status int, field, message string) error {
	return &httpError{status: status, code: "validation", message: message, fields: map[string]string{field: message}}
}

var errUnauthenticated = newError(fiber.StatusUnauthorized, "unauthenticated", "sign in, or send a valid bearer token")

// errorHandler maps every error to a status and the JSON body, in one place.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		status, body := toResponse(err)
		if status >= 500 {
			log.Error("request failed", "method", c.Method(), "path", c.Path(), "status", status, "err", err)
		}
		if status == fiber.StatusServiceUnavailable && c.GetRespHeader(fiber.HeaderRetryAfter) == "" {
			c.Set(fiber.HeaderRetryAfter, "2")
		}
		return c.Status(status).JSON(body)
	}
}

func toResponse(err error) (int, errorBody) {
	var he *httpError
	var verr *errdefs.ValidationError
	var fe *fiber.Error
	var ps plans.Problems
	switch {
	case errors.As(err, &ps):
		fields := map[string]string{}
		for _, p := range ps {
			if _, ok := fields[p.Field]; !ok {
				fields[p.Field] = fmt.Sprintf("line %d: %s", p.Line, p.Message)
			}
		}
		return fiber.StatusUnprocessableEntity, errorBody{errorDetail{Code: "validation",
			Message: fmt.Sprintf("the plan has %d problem(s)", len(ps)), Fields: fields, Problems: ps}}
	case errors.As(err, &he):
		return he.status, errorBody{errorDetail{Code: he.code, Message: he.message, Fields: he.fields}}
	case errors.As(err, &verr):
		return fiber.StatusUnprocessableEntity, errorBody{errorDetail{Code: "validation", Message: verr.Error(), Fields: verr.Fields}}
	case errors.Is(err, errdefs.ErrNotFound):
		return fiber.StatusNotFound, errorBody{errorDetail{Code: "not_found", Message: err.Error()}}
	case errors.Is(err, errdefs.ErrConflict):
		return fiber.StatusConflict, errorBody{errorDetail{Code: "conflict", Message: err.Error()}}
	case errors.Is(err, errdefs.ErrForbidden):
		return fiber.StatusForbidden, errorBody{errorDetail{Code: "forbidden", Message: err.Error()}}
	case errors.Is(err, errdefs.ErrUnavailable):
		return fiber.StatusServiceUnavailable, errorBody{errorDetail{Code: "unavailable", Message: "temporarily unavailable; retry with the same key"}}
	case errors.As(err, &fe):
		code := "http"
		switch fe.Code {
		case fiber.StatusNotFound:
			code = "not_found"
		case fiber.StatusRequestEntityTooLarge:
			return fe.Code, errorBody{errorDetail{Code: "too_large", Message: "request body too large", Fields: map[string]string{"body": "too large"}}}
		case fiber.StatusMethodNotAllowed:
			code = "method_not_allowed"
		case fiber.StatusBadRequest:
			code = "bad_request"
		}
		return fe.Code, errorBody{errorDetail{Code: code, Message: fe.Message}}
	default:
		return fiber.StatusInternalServerError, errorBody{errorDetail{Code: "internal", Message: "internal error"}}
	}
}
