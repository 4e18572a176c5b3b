// Command argocd-lua runs a resource customization folder laid out as in Argo CD's
// resource_customizations/<group>/<Kind>/ (health.lua, actions/discovery.lua,
// actions/<name>/action.lua) through Argo CD's own Lua engine, github.com/argoproj/argo-cd/v3
// util/lua, the way Argo CD itself runs them:
//
//   - the folder becomes a resource override keyed "<group>/<Kind>", exactly what the
//     argocd-cm keys resource.customizations.health.<group>_<Kind> and
//     resource.customizations.actions.<group>_<Kind> produce;
//   - health goes through gitops-engine's health.GetResourceHealth with
//     lua.ResourceHealthOverrides, as the application controller does (controller/health.go),
//     so deletion handling and error-to-Unknown mapping are Argo CD's;
//   - discovery and actions use lua.VM{ResourceOverrides} with the standard libraries off, as
//     the API server does (server/application/application.go), and an action's patch is the
//     JSON merge patch the API server would send (jsonpatch.CreateMergePatch of live and new).
//
// Usage:
//
//	argocd-lua health            --dir DIR -f OBJ.yaml [--open-libs]
//	argocd-lua discovery         --dir DIR -f OBJ.yaml
//	argocd-lua action NAME       --dir DIR -f OBJ.yaml
//	argocd-lua test              --dir DIR [--open-libs]
//	argocd-lua argocd-cm         --dir DIR [--open-libs]
//
// -f - reads the object from stdin (YAML or JSON). health, discovery and action print one JSON
// document on stdout. test runs DIR/health_test.yaml and DIR/actions/action_test.yaml in Argo
// CD's own format with the logic of util/lua/health_test.go and custom_actions_test.go, prints
// one JSON line per case and exits 1 when any case fails. argocd-cm prints the argocd-cm data
// keys that install the folder into an Argo CD.
//
// --open-libs runs health.lua with Lua's standard libraries, as Argo CD does for built-in
// scripts and for overrides with resource.customizations.useOpenLibs.<group>_<Kind>: "true".
// The default is what a ConfigMap-installed script gets: no string/math libraries.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/argoproj/gitops-engine/pkg/health"
	jsonpatch "github.com/evanphx/json-patch"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
)

const usage = `usage:
  argocd-lua health       --dir DIR -f OBJ.yaml [--open-libs]
  argocd-lua discovery    --dir DIR -f OBJ.yaml
  argocd-lua action NAME  --dir DIR -f OBJ.yaml
  argocd-lua test         --dir DIR [--open-libs]
  argocd-lua argocd-cm    --dir DIR [--open-libs]
`

// customization is one <group>/<Kind> folder read from disk.
type customization struct {
	key       string // "<group>/<Kind>", lua.GetConfigMapKey of the objects it applies to
	dir       string
	healthLua string
	actions   appv1.ResourceActions
	openLibs  bool
}

func loadCustomization(dir string, openLibs bool) (*customization, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	kind := filepath.Base(abs)
	group := filepath.Base(filepath.Dir(abs))
	c := &customization{key: group + "/" + kind, dir: abs, openLibs: openLibs}
	if b, err := os.ReadFile(filepath.Join(abs, "health.lua")); err == nil {
		c.healthLua = string(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(abs, "actions", "discovery.lua")); err == nil {
		c.actions.ActionDiscoveryLua = string(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	scripts, err := filepath.Glob(filepath.Join(abs, "actions", "*", "action.lua"))
	if err != nil {
		return nil, err
	}
	sort.Strings(scripts)
	for _, path := range scripts {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		c.actions.Definitions = append(c.actions.Definitions, appv1.ResourceActionDefinition{
			Name:      filepath.Base(filepath.Dir(path)),
			ActionLua: string(b),
		})
	}
	if c.healthLua == "" && c.actions.ActionDiscoveryLua == "" {
		return nil, fmt.Errorf("%s has neither health.lua nor actions/discovery.lua", abs)
	}
	return c, nil
}

// actionsYAML is the value of the argocd-cm key resource.customizations.actions.<group>_<Kind>,
// the text appv1.ResourceOverride.GetActions parses.
func (c *customization) actionsYAML() (string, error) {
	if c.actions.ActionDiscoveryLua == "" && len(c.actions.Definitions) == 0 {
		return "", nil
	}
	b, err := yaml.Marshal(c.actions)
	return string(b), err
}

// overrides is what Argo CD's settings manager builds from argocd-cm for this folder.
func (c *customization) overrides() (map[string]appv1.ResourceOverride, error) {
	actions, err := c.actionsYAML()
	if err != nil {
		return nil, err
	}
	return map[string]appv1.ResourceOverride{
		c.key: {HealthLua: c.healthLua, UseOpenLibs: c.openLibs, Actions: actions},
	}, nil
}

// readObject reads one Kubernetes object, YAML or JSON, from a file or "-" (stdin), as Argo
// CD's tests do (sigs.k8s.io/yaml into map[string]any, wrapped in Unstructured).
func readObject(path string) (*unstructured.Unstructured, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(obj) == 0 {
		return nil, fmt.Errorf("%s: no object", path)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// resourceHealth assesses health as the application controller does.
func resourceHealth(c *customization, obj *unstructured.Unstructured) (*health.HealthStatus, error) {
	overrides, err := c.overrides()
	if err != nil {
		return nil, err
	}
	hs, err := health.GetResourceHealth(obj, lua.ResourceHealthOverrides(overrides))
	if err != nil {
		return hs, err
	}
	if hs == nil {
		return nil, fmt.Errorf("no health check for %s (the folder provides %s)",
			lua.GetConfigMapKey(obj.GroupVersionKind()), c.key)
	}
	return hs, nil
}

// discover lists the actions as the API server does (getAvailableActions), sorted by name.
func discover(c *customization, obj *unstructured.Unstructured) ([]appv1.ResourceAction, error) {
	overrides, err := c.overrides()
	if err != nil {
		return nil, err
	}
	vm := lua.VM{ResourceOverrides: overrides}
	scripts, err := vm.GetResourceActionDiscovery(obj)
	if err != nil {
		return nil, fmt.Errorf("error getting Lua discovery script: %w", err)
	}
	if len(scripts) == 0 {
		return []appv1.ResourceAction{}, nil
	}
	actions, err := vm.ExecuteResourceActionDiscovery(obj, scripts)
	if err != nil {
		return nil, fmt.Errorf("error executing Lua discovery script: %w", err)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, nil
}

type impacted struct {
	Operation  lua.K8SOperation `json:"operation"`
	Resource   map[string]any   `json:"resource"`
	MergePatch json.RawMessage  `json:"mergePatch,omitempty"`
}

// runAction runs one action as the API server does (RunResourceActionV2), returning every
// impacted resource and, for patches, the merge patch the server would send.
func runAction(c *customization, obj *unstructured.Unstructured, name string) ([]impacted, error) {
	overrides, err := c.overrides()
	if err != nil {
		return nil, err
	}
	liveBytes, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	vm := lua.VM{ResourceOverrides: overrides}
	action, err := vm.GetResourceAction(obj, name)
	if err != nil {
		return nil, fmt.Errorf("error getting Lua resource action %q: %w", name, err)
	}
	results, err := vm.ExecuteResourceAction(obj, action.ActionLua, nil)
	if err != nil {
		return nil, fmt.Errorf("error executing Lua resource action: %w", err)
	}
	out := make([]impacted, 0, len(results))
	for _, r := range results {
		newBytes, err := json.Marshal(r.UnstructuredObj)
		if err != nil {
			return nil, err
		}
		item := impacted{Operation: r.K8SOperation}
		if err := json.Unmarshal(newBytes, &item.Resource); err != nil {
			return nil, err
		}
		if r.K8SOperation == lua.PatchOperation {
			patch, err := jsonpatch.CreateMergePatch(liveBytes, newBytes)
			if err != nil {
				return nil, fmt.Errorf("error calculating merge patch: %w", err)
			}
			item.MergePatch = patch
		}
		out = append(out, item)
	}
	return out, nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	var actionName string
	if cmd == "action" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return errors.New("action needs a NAME")
		}
		actionName, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	dir := fs.String("dir", "", "customization folder, .../<group>/<Kind>")
	file := fs.String("f", "", "object file (YAML or JSON), - for stdin")
	openLibs := fs.Bool("open-libs", false, "run health.lua with Lua's standard libraries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	c, err := loadCustomization(*dir, *openLibs)
	if err != nil {
		return err
	}
	switch cmd {
	case "test":
		return runTests(c)
	case "argocd-cm":
		return printArgoCDConfigMap(c)
	case "health", "discovery", "action":
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if *file == "" {
		return errors.New("-f is required")
	}
	obj, err := readObject(*file)
	if err != nil {
		return err
	}
	switch cmd {
	case "health":
		hs, err := resourceHealth(c, obj)
		if err != nil {
			return err
		}
		return printJSON(map[string]string{"status": string(hs.Status), "message": hs.Message})
	case "discovery":
		actions, err := discover(c, obj)
		if err != nil {
			return err
		}
		return printJSON(actions)
	default:
		out, err := runAction(c, obj, actionName)
		if err != nil {
			return err
		}
		return printJSON(out)
	}
}

// printArgoCDConfigMap prints the argocd-cm data that installs this folder into Argo CD.
func printArgoCDConfigMap(c *customization) error {
	suffix := strings.ReplaceAll(c.key, "/", "_")
	data := map[string]string{}
	if c.healthLua != "" {
		data["resource.customizations.health."+suffix] = c.healthLua
	}
	actions, err := c.actionsYAML()
	if err != nil {
		return err
	}
	if actions != "" {
		data["resource.customizations.actions."+suffix] = actions
	}
	if c.openLibs {
		data["resource.customizations.useOpenLibs."+suffix] = "true"
	}
	b, err := yaml.Marshal(map[string]any{"data": data})
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}

// ---- Argo CD's test format (util/lua/health_test.go, custom_actions_test.go) ----

type healthTests struct {
	Tests []struct {
		InputPath    string              `json:"inputPath"`
		HealthStatus health.HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string                 `json:"inputPath"`
		Result    []appv1.ResourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action               string            `json:"action"`
		InputPath            string            `json:"inputPath"`
		ExpectedOutputPath   string            `json:"expectedOutputPath"`
		ExpectedErrorMessage string            `json:"expectedErrorMessage"`
		Parameters           map[string]string `json:"parameters"`
	} `json:"actionTests"`
}

type caseResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// runTests runs health_test.yaml and actions/action_test.yaml like Argo CD's own tests, with
// two deliberate differences that only make them stricter: discovery must return exactly the
// expected actions (upstream checks only that each returned action is expected, so a script
// returning nothing passes), and an action's output is compared as JSON after a round trip
// (upstream uses gitops-engine's diff for the same reason: Lua turns integers into floats).
func runTests(c *customization) error {
	var results []caseResult
	add := func(name string, err error) {
		r := caseResult{Name: name, OK: err == nil}
		if err != nil {
			r.Detail = err.Error()
		}
		results = append(results, r)
	}
	ran := 0
	if b, err := os.ReadFile(filepath.Join(c.dir, "health_test.yaml")); err == nil {
		var ht healthTests
		if err := yaml.UnmarshalStrict(b, &ht); err != nil {
			return fmt.Errorf("health_test.yaml: %w", err)
		}
		for _, t := range ht.Tests {
			ran++
			add("health/"+t.InputPath, func() error {
				obj, err := readObject(filepath.Join(c.dir, t.InputPath))
				if err != nil {
					return err
				}
				// Upstream's health test runs the script directly (vm.ExecuteHealthLua); going
				// through health.GetResourceHealth is the controller's path and adds only the
				// deletion rule in front of it.
				got, err := resourceHealth(c, obj)
				if err != nil {
					return err
				}
				if *got != t.HealthStatus {
					return fmt.Errorf("want %+v, got %+v", t.HealthStatus, *got)
				}
				return nil
			}())
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	actionsDir := filepath.Join(c.dir, "actions")
	if b, err := os.ReadFile(filepath.Join(actionsDir, "action_test.yaml")); err == nil {
		var at actionTests
		if err := yaml.UnmarshalStrict(b, &at); err != nil {
			return fmt.Errorf("action_test.yaml: %w", err)
		}
		for _, t := range at.DiscoveryTests {
			ran++
			add("discovery/"+t.InputPath, func() error {
				obj, err := readObject(filepath.Join(actionsDir, t.InputPath))
				if err != nil {
					return err
				}
				got, err := discover(c, obj)
				if err != nil {
					return err
				}
				want := append([]appv1.ResourceAction(nil), t.Result...)
				sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
				if !reflect.DeepEqual(normalize(want), normalize(got)) {
					return fmt.Errorf("want %+v, got %+v", want, got)
				}
				return nil
			}())
		}
		for _, t := range at.ActionTests {
			ran++
			add(fmt.Sprintf("actions/%s/%s", t.Action, t.InputPath), func() error {
				if len(t.Parameters) > 0 {
					return errors.New("action parameters are not supported by this runner")
				}
				obj, err := readObject(filepath.Join(actionsDir, t.InputPath))
				if err != nil {
					return err
				}
				out, err := runAction(c, obj, t.Action)
				if t.ExpectedErrorMessage != "" {
					if err == nil || !strings.HasSuffix(err.Error(), t.ExpectedErrorMessage) {
						return fmt.Errorf("want error %q, got %v", t.ExpectedErrorMessage, err)
					}
					return nil
				}
				if err != nil {
					return err
				}
				want, err := readObject(filepath.Join(actionsDir, t.ExpectedOutputPath))
				if err != nil {
					return err
				}
				if len(out) != 1 || out[0].Operation != lua.PatchOperation {
					return fmt.Errorf("want one patch of the object, got %d impacted resources", len(out))
				}
				if !reflect.DeepEqual(normalize(want.Object), normalize(out[0].Resource)) {
					return fmt.Errorf("output differs from %s: merge patch was %s",
						t.ExpectedOutputPath, out[0].MergePatch)
				}
				return nil
			}())
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	failed := 0
	enc := json.NewEncoder(os.Stdout)
	for _, r := range results {
		if !r.OK {
			failed++
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if ran == 0 {
		return errors.New("no health_test.yaml or actions/action_test.yaml cases found")
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cases failed", failed, len(results))
	}
	return nil
}

// normalize round-trips a value through JSON so numbers compare as float64 on both sides.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
