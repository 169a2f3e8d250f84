package main

import (
	"os"
	"os/user"

	"github.com/shouwang/shouwang/audit"
)

// cliActor names whoever runs a command that changes something, for the
// audit log: "cli:<os user>". Anyone at the shell of the server holds the
// database anyway; this says which account it was.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return audit.CLIPrefix + u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return audit.CLIPrefix + name
	}
	return audit.CLIPrefix + "unknown"
}
