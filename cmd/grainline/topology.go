package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline"
	"github.com/grainline/grainline/connectors/kafka"
)

// errDrift: diff found differences (exit status 1, after printing them).
var errDrift = errors.New("topology drift")

func runTopology(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "apply" && args[0] != "diff") {
		return subcommandUsage(stderr, args, "usage: grainline topology apply|diff [-kafka BROKERS] [-file topology.yaml]")
	}
	action := args[0]
	fs := newFlags("topology "+action, stderr)
	brokers := fs.String("kafka", envOr("GRAINLINE_KAFKA", ""), "comma-separated Kafka brokers (env GRAINLINE_KAFKA)")
	file := fs.String("file", "", "topology file; default: the topology.yaml built into this binary")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *brokers == "" {
		fmt.Fprintln(stderr, "grainline topology: -kafka or GRAINLINE_KAFKA is required")
		return errUsage
	}
	data := grainline.TopologyYAML
	if *file != "" {
		var err error
		if data, err = os.ReadFile(*file); err != nil {
			return err
		}
	}
	topo, err := kafka.Load(data)
	if err != nil {
		return err
	}
	kcfg := kafka.Config{Brokers: strings.Split(*brokers, ",")}.WithDefaults()
	if err := kcfg.Validate(); err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdmin(kcfg.Brokers, kcfg.Sarama())
	if err != nil {
		return fmt.Errorf("connect to Kafka: %w", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if action == "apply" {
		created, err := kafka.Apply(ctx, admin, topo)
		if err != nil {
			return err
		}
		if len(created) == 0 {
			fmt.Fprintln(stdout, "all topics exist")
		}
		for _, t := range created {
			fmt.Fprintln(stdout, "created", t)
		}
		return nil
	}
	drift, err := kafka.Diff(ctx, admin, topo)
	if err != nil {
		return err
	}
	if len(drift) == 0 {
		fmt.Fprintln(stdout, "no drift")
		return nil
	}
	for _, d := range drift {
		fmt.Fprintln(stdout, d.String())
	}
	return fmt.Errorf("%w: %d difference(s)", errDrift, len(drift))
}
