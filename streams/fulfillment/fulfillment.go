// Package fulfillment is the simulated fulfillment worker: the
// "oms-fulfillment-worker" goka processor reads the task topic and, for every
// FulfillmentTaskRequested event, performs the task through a Provisioner and
// sends the outcome back to the order as a command (completeTask or
// failTask) on the order command topic.
//
// The result command's idempotency key is derived from the task id and
// attempt, and the Provisioner is idempotent per task, so a duplicated task
// event yields the same command twice, which the order grain dedupes.
// Outcomes the worker cannot know (a timeout, a lost connection) are never
// reported as failures: the call is retried with backoff until it answers or
// the worker stops; a stopped worker leaves the task uncommitted.
package fulfillment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/deadletter"
)

// EventTaskRequested is the event type the worker executes.
const EventTaskRequested = "FulfillmentTaskRequested"

// The commands the worker sends to the order.
const (
	CommandComplete = "completeTask"
	CommandFail     = "failTask"
)

// Config configures the worker.
type Config struct {
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Group is the consumer group. Default "oms-fulfillment-worker".
	Group goka.Group
	// Tasks is the input topic. Default "oms.fulfillment.tasks.v1".
	Tasks goka.Stream
	// OrderCommands is the output topic. Default "oms.order.commands.v1".
	OrderCommands goka.Stream
	// DeadLetter receives undecodable tasks. Default "grainline.deadletter.v1".
	DeadLetter goka.Stream
	// Retry is the backoff between calls whose outcome was unknown.
	// Defaults: see backoff.Policy.
	Retry backoff.Policy
	// CallTimeout bounds one Provision call. Default 30s.
	CallTimeout time.Duration
	// Now is the clock for dead-letter records. Default time.Now.
	Now func() time.Time
}

// ErrConfig reports an invalid configuration.
var ErrConfig = errors.New("fulfillment: invalid config")

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Group == "" {
		c.Group = "oms-fulfillment-worker"
	}
	if c.Tasks == "" {
		c.Tasks = "oms.fulfillment.tasks.v1"
	}
	if c.OrderCommands == "" {
		c.OrderCommands = "oms.order.commands.v1"
	}
	if c.DeadLetter == "" {
		c.DeadLetter = "grainline.deadletter.v1"
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Retry = c.Retry.WithDefaults()
	return c
}

// Validate checks c: brokers are set, the input is not an output, the call
// timeout is positive and the retry policy valid.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	if c.Tasks == c.OrderCommands || c.Tasks == c.DeadLetter {
		return fmt.Errorf("%w: input topic %q is also an output", ErrConfig, c.Tasks)
	}
	if c.CallTimeout <= 0 {
		return fmt.Errorf("%w: CallTimeout must be positive", ErrConfig)
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Worker is the fulfillment worker.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	prov  Provisioner
	opts  []goka.ProcessorOption
	graph *goka.GroupGraph
}

// New builds the worker. opts configure goka: pass kafka.Config.GokaOptions().
func New(cfg Config, prov Provisioner, log *slog.Logger, opts ...goka.ProcessorOption) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if prov == nil {
		return nil, fmt.Errorf("%w: nil provisioner", ErrConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Worker{cfg: cfg, prov: prov, opts: opts, log: log.With("component", "fulfillment", "group", string(cfg.Group))}
	w.graph = goka.DefineGroup(cfg.Group,
		goka.Input(cfg.Tasks, new(codec.Bytes), w.handle),
		goka.Output(cfg.OrderCommands, new(codec.Bytes)),
		goka.Output(cfg.DeadLetter, new(codec.Bytes)),
	)
	if err := w.graph.Validate(); err != nil {
		return nil, fmt.Errorf("fulfillment: group graph: %w", err)
	}
	return w, nil
}

// Run works until ctx ends (nil) or the processor fails (its error). Run may
// be called again after it returned.
func (w *Worker) Run(ctx context.Context) error {
	proc, err := goka.NewProcessor(w.cfg.Brokers, w.graph, w.opts...)
	if err != nil {
		return fmt.Errorf("fulfillment: new processor: %w", err)
	}
	w.log.Info("fulfillment worker running", "input", string(w.cfg.Tasks), "output", string(w.cfg.OrderCommands))
	err = proc.Run(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("fulfillment: %w", err)
	}
	return nil
}

// Task is the payload of FulfillmentTaskRequested.
type Task struct {
	OrderID  string          `json:"orderId"`
	QuoteID  string          `json:"quoteId"`
	Status   string          `json:"status"`
	TaskID   string          `json:"taskId"`
	TaskType string          `json:"taskType"`
	Attempt  int             `json:"attempt"`
	Lines    json.RawMessage `json:"lines,omitempty"`
}

// CompletePayload is the payload of completeTask.
type CompletePayload struct {
	TaskID string            `json:"taskId"`
	Result map[string]string `json:"result"`
}

// FailPayload is the payload of failTask.
type FailPayload struct {
	TaskID string `json:"taskId"`
	Reason string `json:"reason"`
}

// IdempotencyKey is the key of the result command of one task attempt.
func IdempotencyKey(taskID string, attempt int) string {
	return "task:" + taskID + ":" + strconv.Itoa(attempt) + ":result"
}

var errStopped = errors.New("fulfillment: stopped before the task's outcome was known")

func (w *Worker) handle(ctx goka.Context, msg any) {
	value, _ := msg.([]byte)
	env, err := kafka.DecodeEnvelope(value)
	if err != nil {
		w.deadLetter(ctx, value, deadletter.CategoryDecode, err)
		return
	}
	if env.EventType != EventTaskRequested {
		return
	}
	var task Task
	if err := json.Unmarshal(env.Payload, &task); err != nil {
		w.deadLetter(ctx, value, deadletter.CategoryDecode, fmt.Errorf("fulfillment: decode task: %w", err))
		return
	}
	if task.TaskID == "" {
		w.deadLetter(ctx, value, deadletter.CategoryPermanent, errors.New("fulfillment: task lacks taskId"))
		return
	}
	orderID := task.OrderID
	if orderID == "" {
		orderID = env.AggregateID
	}
	log := w.log.With("tenant_id", env.TenantID, "order_id", orderID, "task_id", task.TaskID,
		"task_type", task.TaskType, "attempt", task.Attempt, "correlation_id", env.CorrelationID)

	done := ctx.DeferCommit()
	var result map[string]string
	_, err = backoff.Retry(ctx.Context(), w.cfg.Retry,
		func(err error) bool { return !errors.Is(err, ErrRejected) },
		func(attempt int, err error, wait time.Duration) {
			log.Warn("task outcome unknown, retrying", "call", attempt, "wait", wait, "error", err)
		},
		func(ctx context.Context) error {
			cctx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
			defer cancel()
			var err error
			result, err = w.prov.Provision(cctx, env.TenantID, task.TaskID)
			return err
		})

	var name string
	var payload any
	switch {
	case err == nil:
		name, payload = CommandComplete, CompletePayload{TaskID: task.TaskID, Result: result}
	case errors.Is(err, ErrRejected):
		name, payload = CommandFail, FailPayload{TaskID: task.TaskID, Reason: err.Error()}
	default:
		log.Info("task not finished before shutdown", "error", err)
		done(fmt.Errorf("%w: %w", errStopped, err))
		return
	}
	pl, _ := json.Marshal(payload) // plain structs of strings: cannot fail
	cmd, _ := json.Marshal(kafka.CommandMessage{
		TenantID:       env.TenantID,
		Kind:           "order",
		ID:             orderID,
		Command:        name,
		Payload:        pl,
		IdempotencyKey: IdempotencyKey(task.TaskID, task.Attempt),
		Actor:          "worker",
		CorrelationID:  env.CorrelationID,
		CausationID:    env.EventID,
	})
	ctx.Emit(w.cfg.OrderCommands, orderID, cmd, goka.WithCtxEmitHeaders(goka.Headers{
		kafka.HeaderTenant:  []byte(env.TenantID),
		kafka.HeaderEventID: []byte(env.EventID),
	}))
	log.Debug("task outcome sent", "command", name)
	done(nil)
}

func (w *Worker) deadLetter(ctx goka.Context, value []byte, cat deadletter.Category, err error) {
	w.log.Warn("message dead-lettered", "topic", string(ctx.Topic()), "partition", ctx.Partition(),
		"offset", ctx.Offset(), "category", string(cat), "error", err)
	deadletter.Emit(ctx, w.cfg.DeadLetter, value, cat, 1, err, w.cfg.Now())
}
