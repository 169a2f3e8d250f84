// Package captest checks CAP 1.2 documents against the OASIS schema, for
// tests: with xmllint when the machine has it (CI must: a missing xmllint
// fails there, see scripts/ensure-tools.sh), and always with a checker in
// Go that reads the same XSD, so a test still means something without it.
//
// CAP-v1.2.xsd is the OASIS schema (docs.oasis-open.org/emergency/cap/v1.2/
// CAP-v1.2.xsd, "Copyright OASIS Open 2010 All Rights Reserved"; OASIS
// allows verbatim copies that keep the notice), taken unchanged from the
// copy in github.com/google/cap-library, schema/cap12.xsd (commit
// 4c89bb76a6cc3cef4b9ae7fe2c2934103352da5d), which only re-indents it.
package captest

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// XSD is the OASIS CAP 1.2 schema.
//
//go:embed CAP-v1.2.xsd
var XSD []byte

// Validate fails t unless doc is a valid CAP 1.2 alert: by the Go check of
// the schema, by xmllint when it is installed, and by the rules of the
// specification the schema cannot state.
func Validate(t testing.TB, doc []byte) {
	t.Helper()
	for _, e := range SchemaErrors(doc) {
		t.Errorf("CAP schema (Go check): %s", e)
	}
	for _, e := range SpecErrors(doc) {
		t.Errorf("CAP specification: %s", e)
	}
	if ran, err := Xmllint(t, doc); ran && err != nil {
		t.Errorf("CAP schema (xmllint): %v", err)
	}
	if t.Failed() {
		t.Logf("the document:\n%s", doc)
	}
}

// Xmllint validates doc against the XSD with xmllint. ran is false when
// xmllint is not installed; on CI (CI set) that fails t instead, so a
// missing tool cannot pass for a valid document.
func Xmllint(t testing.TB, doc []byte) (ran bool, err error) {
	t.Helper()
	bin, lookErr := exec.LookPath("xmllint")
	if lookErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("xmllint is not installed (scripts/ensure-tools.sh installs it): CAP documents cannot be checked against the XSD")
		}
		t.Logf("xmllint is not installed: CAP checked by the Go schema check only (apt-get install libxml2-utils)")
		return false, nil
	}
	dir := t.TempDir()
	xsd, file := filepath.Join(dir, "CAP-v1.2.xsd"), filepath.Join(dir, "alert.xml")
	if err := os.WriteFile(xsd, XSD, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--noout", "--nonet", "--schema", xsd, file).CombinedOutput()
	if err != nil {
		return true, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return true, nil
}
