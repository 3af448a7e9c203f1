//go:build wrongconstructor

package main

// This file does not compile, on purpose: it shows that the component spec's
// constructors are typed. An operator's NewProcessor must return an
// engine.Processor; returning a value without a Process method is a compile
// error, not a failure found when a job is built. TestWrongConstructorDoesNotCompile
// builds the package with -tags wrongconstructor and checks the error.

import (
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// notAProcessor has no Process method.
type notAProcessor struct{}

func init() {
	component.Register(component.Spec{
		Type: "operator.wrong_constructor", Kind: engine.KindOperator,
		Summary: "does not compile", Accepts: md.KindAny, Produces: engine.SameAsInput,
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			return notAProcessor{}, nil
		},
	})
}
