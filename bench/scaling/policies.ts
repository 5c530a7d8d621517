import { decideScale, type ScalingSettings, scalingConfigFor } from '../../core/scaling';
import { type Fleet, simDate } from './fleet';

/** A scaling policy: it attaches its loops and alarms to a fleet before the run starts. */
export interface Policy {
  name: string;
  /** Whether agents hold scale-in protection while busy under this policy. */
  protectBusy: boolean;
  attach(fleet: Fleet): void;
}

/**
 * (a) Kiln: decideScale every decision interval on fresh queue counts and instance reports, then
 * the scaler applies it the way the AWS wiring does: terminate the named instances (decrementing
 * desired capacity), terminate-and-replace the ones that never reported in, and raise desired
 * capacity for launches. It never lowers desired capacity by itself; if a decision ever asked for
 * that the run stops with an error, because Auto Scaling would then pick the victim.
 */
export function kiln(settings: ScalingSettings, arrivalWindowPeriods: number): Policy {
  return {
    name: 'kiln',
    protectBusy: true,
    attach(fleet) {
      const config = scalingConfigFor(
        {
          minCapacity: fleet.minCapacity,
          maxCapacity: fleet.maxCapacity,
          concurrency: fleet.params.concurrency,
        },
        settings,
      );
      const { metricPeriodSeconds: period, metricDelaySeconds: delay } = fleet.params;
      fleet.every(settings.decisionIntervalSeconds, 0, () => {
        // NumberOfMessagesSent over the last complete periods CloudWatch has published.
        const last = Math.floor((fleet.now - delay) / period) - 1;
        let jobs = 0;
        for (let k = last - arrivalWindowPeriods + 1; k <= last; k++)
          jobs += k >= 0 ? fleet.arrivalsIn(k) : 0;
        const decision = decideScale(
          fleet.observe({ jobs, overSeconds: arrivalWindowPeriods * period }),
          config,
          simDate(fleet.now),
        );
        for (const id of decision.replace) fleet.terminate(id, false);
        for (const id of decision.terminate) fleet.terminate(id, true);
        if (decision.desiredCapacity < fleet.live.length) {
          throw new Error(
            `kiln asked for desired ${decision.desiredCapacity} < ${fleet.live.length} instances`,
          );
        }
        if (decision.desiredCapacity > fleet.desired) fleet.setDesired(decision.desiredCapacity);
      });
    },
  };
}

export interface TargetTrackingOptions {
  /** Backlog per instance to hold: acceptable latency / average processing time. */
  targetBacklogPerInstance: number;
  /** Agents hold scale-in protection while busy (the variant that avoids killing builds). */
  protectBusy: boolean;
  /** How often the metric is sampled within a period (the Average statistic over the period). */
  sampleSeconds: number;
}

/**
 * (b) AWS's documented SQS pattern: target tracking on backlog per instance
 * (ApproximateNumberOfMessagesVisible / GroupInServiceInstances, metric math, 1-minute periods).
 * Its high alarm needs 3 of 3 breaching datapoints and its low alarm 15 of 15 below 90% of the
 * target; while an alarm is in ALARM it invokes the policy every minute, which sets capacity to
 * in-service × metric / target. With no instance in service the metric has no datapoint, so a step
 * policy on ApproximateNumberOfMessagesVisible > 0 (1 datapoint) takes the group from 0 to 1.
 * Scale-in lowers desired capacity and Auto Scaling picks the instances.
 */
export function targetTracking(options: TargetTrackingOptions): Policy {
  return {
    name: options.protectBusy ? 'target-tracking+protect' : 'target-tracking',
    protectBusy: options.protectBusy,
    attach(fleet) {
      const { metricPeriodSeconds: period, metricDelaySeconds: delay } = fleet.params;
      const target = options.targetBacklogPerInstance;
      const visibleSum: number[] = [];
      const inServiceSum: number[] = [];
      const samples: number[] = [];
      fleet.every(options.sampleSeconds, 0, () => {
        const k = Math.floor(fleet.now / period);
        visibleSum[k] = (visibleSum[k] ?? 0) + fleet.visible;
        inServiceSum[k] = (inServiceSum[k] ?? 0) + fleet.inService;
        samples[k] = (samples[k] ?? 0) + 1;
      });
      const visibleAvg = (k: number) => (k >= 0 && samples[k] ? (visibleSum[k] ?? 0) / (samples[k] ?? 1) : 0);
      const backlogPerInstance = (k: number): number | undefined =>
        k >= 0 && (inServiceSum[k] ?? 0) > 0 ? (visibleSum[k] ?? 0) / (inServiceSum[k] ?? 1) : undefined;
      const lastN = (last: number, n: number) =>
        Array.from({ length: n }, (_, i) => backlogPerInstance(last - i));

      fleet.every(period, period + delay, () => {
        const last = Math.floor((fleet.now - delay) / period) - 1;
        if (last < 0) return;
        // Capacity the policy asks for: in-service × (backlog / in-service) / target.
        const wanted = Math.ceil(visibleAvg(last) / target);
        const high = lastN(last, 3);
        if (high.every((v) => v !== undefined && v > target)) {
          if (Math.min(wanted, fleet.maxCapacity) > fleet.desired) fleet.setDesired(wanted);
        } else {
          const low = lastN(last, 15);
          if (low.every((v) => v !== undefined && v < 0.9 * target) && wanted < fleet.desired) {
            fleet.setDesired(wanted);
          }
        }
        if (fleet.desired === 0 && visibleAvg(last) > 0) fleet.setDesired(1);
      });
    },
  };
}

/**
 * (c) Buildkite-style: every interval, desired = ceil((scheduled + running jobs) / per-instance) on
 * fresh counts, set both ways; a decrease lets Auto Scaling pick which instances go.
 */
export function buildkite(intervalSeconds: number): Policy {
  return {
    name: 'buildkite-style',
    protectBusy: false,
    attach(fleet) {
      fleet.every(intervalSeconds, 0, () => {
        fleet.setDesired(Math.ceil((fleet.visible + fleet.inFlight) / fleet.params.concurrency));
      });
    },
  };
}
