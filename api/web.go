package api

import (
	"embed"
	"mime"
	"path"

	"github.com/gofiber/fiber/v2"
)

// The pages are plain files compiled into the binary: no build step, no
// CDN, so `go run` serves them and they load on a community office's
// closed network.
//
//go:embed web
var webFiles embed.FS

// pages maps paths to files; assets are served under their own names.
var pages = map[string]string{"/": "web/index.html", "/console": "web/console.html", "/duties": "web/duties.html"}

var assets = []string{"app.css", "common.js", "resident.js", "console.js", "duties.js", "sw.js", "manifest.webmanifest", "icon.svg"}

// webCSP allows nothing from elsewhere and no inline script.
const webCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"manifest-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func routeWeb(app *fiber.App) {
	for p, file := range pages {
		app.Get(p, serveFile(file, fiber.MIMETextHTMLCharsetUTF8))
	}
	for _, a := range assets {
		ct := mime.TypeByExtension(path.Ext(a))
		switch path.Ext(a) {
		case ".webmanifest":
			ct = "application/manifest+json"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		}
		app.Get("/"+a, serveFile("web/"+a, ct))
	}
}

func serveFile(name, contentType string) fiber.Handler {
	body, err := webFiles.ReadFile(name)
	if err != nil {
		panic(err) // a missing embedded file is a build mistake
	}
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, contentType)
		c.Set("Content-Security-Policy", webCSP)
		c.Set("X-Content-Type-Options", "nosniff")
		c.Set("Referrer-Policy", "same-origin")
		// Pages change with the binary; the service worker keeps its own copy.
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Send(body)
	}
}
