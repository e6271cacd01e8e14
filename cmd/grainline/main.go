// Command grainline is the one binary of Grainline. Its first argument is
// what to run: dev, serve, token, migrate, topology, bench, admin,
// deadletter.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "run every role in one process on embedded infrastructure", runDev},
		{"serve", "run production roles (node, gateway, relay, processors, worker, hub) on real services", runServe},
		{"token", "print a dev bearer token signed with the data folder's key", runToken},
		{"migrate", "apply or inspect PostgreSQL schema migrations (up | status)", runMigrate},
		{"topology", "create (apply) or compare (diff) Kafka topics from topology.yaml", runTopology},
		{"bench", "measure durable command throughput and latency", runBench},
		{"admin", "operator checks on the truth store (audit-verify, plans)", runAdmin},
		{"deadletter", "list or replay the dead-letter topic's records (list | replay)", runDeadletter},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: grainline <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'grainline <command> -h' for a command's flags.")
}

// errUsage marks an error already explained to the user.
var errUsage = errors.New("usage")

// subcommandUsage prints the usage of a command that needs a sub-command
// (migrate, topology, admin). Asked for help (-h, --help, help), it
// answers flag.ErrHelp (exit 0), like every command's -h; else errUsage.
func subcommandUsage(stderr io.Writer, args []string, text string) error {
	fmt.Fprintln(stderr, text)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		return flag.ErrHelp
	}
	return errUsage
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			default:
				fmt.Fprintf(stderr, "grainline %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "grainline: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("grainline "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args; a flag error has been printed already.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
