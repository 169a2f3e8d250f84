package api

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openAPIDoc describes every route New registers. It is written by hand;
// TestOpenAPICoversEveryRoute fails when a route and the document disagree.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// openAPIContentType is the YAML media type of RFC 9512.
const openAPIContentType = "application/yaml"

// openAPI serves the OpenAPI document. It needs no token: it holds no
// data, and client generators fetch it without one.
func openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, openAPIContentType)
	return c.Send(openAPIDoc)
}
