package main

import (
	"strings"
	"testing"

	"github.com/shouwang/shouwang/sms"
)

// An operator registers every template with the carrier from this list:
// each appears with its parameters and both texts.
func TestTemplatesList(t *testing.T) {
	var out strings.Builder
	if err := templatesCmd(&out, []string{"list"}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, name := range sms.TemplateNames() {
		tpl := sms.Templates[name]
		if !strings.Contains(text, name+"\n") || !strings.Contains(text, tpl.ZH) || !strings.Contains(text, tpl.EN) {
			t.Errorf("template %s missing from the list", name)
		}
	}
	if !strings.Contains(text, "params: type, address, distance, link, ref") {
		t.Errorf("the offer template's parameters are not listed:\n%s", text)
	}
	if err := templatesCmd(&out, []string{"show"}); err == nil {
		t.Error("an unknown subcommand must fail")
	}
}
