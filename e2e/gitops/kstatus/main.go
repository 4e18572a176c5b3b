// Command kstatus prints what sigs.k8s.io/cli-utils' kstatus (the library Flux and kpt judge
// health with) concludes about one Kubernetes object.
//
// Usage:
//
//	kstatus [-f FILE]    # FILE or stdin: one object as YAML or JSON
//
// Output, one JSON line: {"status": "Current|InProgress|Failed|Terminating|NotFound|Unknown",
// "message": "..."}. An empty document (or "null") is NotFound, as kstatus' pollers report an
// absent object; an object Compute cannot read is Unknown with its error, as the pollers do.
// Input that is not one YAML/JSON object exits 2 with the reason on stderr.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type answer struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// readObject returns the one object in r, or nil for an empty document.
func readObject(r io.Reader) (map[string]interface{}, error) {
	docs := k8syaml.NewYAMLReader(bufio.NewReader(r))
	var found []byte
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		raw, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if string(raw) == "null" {
			continue // a document of comments only
		}
		if found != nil {
			return nil, errors.New("more than one object in the input; give exactly one")
		}
		found = raw
	}
	if found == nil {
		return nil, nil
	}
	// apimachinery's decoder, not encoding/json: kstatus reads metadata.generation and
	// status.observedGeneration with NestedInt64, which fails on encoding/json's float64.
	var obj map[string]interface{}
	if err := k8sjson.Unmarshal(found, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON/YAML object: %w", err)
	}
	return obj, nil
}

func compute(obj map[string]interface{}) answer {
	if obj == nil {
		return answer{Status: string(status.NotFoundStatus), Message: "no object in the input"}
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		return answer{Status: string(status.UnknownStatus), Message: err.Error()}
	}
	return answer{Status: string(res.Status), Message: res.Message}
}

// run returns the exit status, so that main's os.Exit never skips a deferred Close.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("kstatus", flag.ContinueOnError)
	flags.SetOutput(stderr)
	file := flags.String("f", "", "read the object from FILE instead of stdin")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() != 0 {
		fmt.Fprintf(stderr, "kstatus: unexpected arguments %q\n", flags.Args())
		return 2
	}
	in := stdin
	if *file != "" && *file != "-" {
		fh, err := os.Open(*file)
		if err != nil {
			fmt.Fprintf(stderr, "kstatus: %v\n", err)
			return 2
		}
		defer fh.Close()
		in = fh
	}
	obj, err := readObject(in)
	if err != nil {
		fmt.Fprintf(stderr, "kstatus: %v\n", err)
		return 2
	}
	out, err := json.Marshal(compute(obj))
	if err != nil {
		fmt.Fprintf(stderr, "kstatus: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
