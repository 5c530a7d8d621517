/**
 * The boot script of a build instance, as plain lines so tests can read it: install Node.js and
 * the CloudWatch agent, fetch the agent bundle, write its settings, and run it as a systemd unit
 * that restarts it whenever it exits.
 */
import { ENV } from '../definitions';

export const AGENT_UNIT = 'kiln-agent.service';

export const AGENT_PATHS = {
  bundle: '/opt/kiln/kiln-agent.mjs',
  launcher: '/opt/kiln/run-agent',
  env: '/etc/kiln/agent.env',
  config: '/etc/kiln/config.json',
  queueUrls: '/etc/kiln/queue-urls.json',
  unit: `/etc/systemd/system/${AGENT_UNIT}`,
  log: '/var/log/kiln/agent.log',
  workDir: '/var/lib/kiln/work',
  cloudWatchAgentConfig: '/opt/aws/amazon-cloudwatch-agent/etc/kiln.json',
} as const;

export interface AgentUserDataOptions {
  readonly pool: string;
  readonly region: string;
  readonly nodeMajor: number;
  readonly bundleBucket: string;
  readonly bundleKey: string;
  /** JSON of the validated KilnConfig. */
  readonly configJson: string;
  /** JSON map of this pool's queues only (`${pool}/${priority}` → URL). */
  readonly queueUrlsJson: string;
  readonly tableName: string;
  readonly bucketName: string;
  readonly logGroupName: string;
  readonly registerStateMachineArn: string;
  /** The bus the agent announces job transitions on. */
  readonly eventBusName: string;
  /** The instance's own Auto Scaling group (scale-in protection, termination hook). */
  readonly autoScalingGroupName: string;
}

const EOF_MARK = 'KILN_EOF';

/** A file written through a quoted heredoc, so the shell expands nothing inside it. */
function writeFile(path: string, mode: string, content: string): string[] {
  return [`install -D -m ${mode} /dev/null ${path}`, `cat > ${path} <<'${EOF_MARK}'`, content, EOF_MARK];
}

export function agentUserDataCommands(o: AgentUserDataOptions): string[] {
  const node = `/usr/bin/node-${o.nodeMajor}`;
  const envFile = [
    `AWS_REGION=${o.region}`,
    `${ENV.tableName}=${o.tableName}`,
    `${ENV.bucketName}=${o.bucketName}`,
    `${ENV.pool}=${o.pool}`,
    `${ENV.workDir}=${AGENT_PATHS.workDir}`,
    `${ENV.registerStateMachineArn}=${o.registerStateMachineArn}`,
    `${ENV.eventBusName}=${o.eventBusName}`,
    `${ENV.autoScalingGroup}=${o.autoScalingGroupName}`,
    `${ENV.tagInstance}=true`,
  ].join('\n');

  const launcher = [
    '#!/bin/bash',
    `# Run by ${AGENT_UNIT}: assembles the agent's environment, then becomes the agent.`,
    'set -euo pipefail',
    'set -a',
    `. ${AGENT_PATHS.env}`,
    'set +a',
    "token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)",
    `${ENV.agentId}=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-id)`,
    `${ENV.config}=$(cat ${AGENT_PATHS.config})`,
    `${ENV.queueUrls}=$(cat ${AGENT_PATHS.queueUrls})`,
    `export ${ENV.agentId} ${ENV.config} ${ENV.queueUrls}`,
    `exec ${node} --enable-source-maps ${AGENT_PATHS.bundle}`,
  ].join('\n');

  const unit = [
    '[Unit]',
    `Description=Kiln build agent (pool ${o.pool})`,
    'Wants=network-online.target',
    'After=network-online.target amazon-cloudwatch-agent.service',
    // Never stop restarting: an agent that is down leaves its pool's jobs queued.
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${AGENT_PATHS.launcher}`,
    'Restart=always',
    'RestartSec=5',
    // SIGTERM goes to the agent alone: it hands its jobs back and kills their process trees itself.
    'KillMode=mixed',
    'TimeoutStopSec=120',
    `StandardOutput=append:${AGENT_PATHS.log}`,
    `StandardError=append:${AGENT_PATHS.log}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ].join('\n');

  const cloudWatchAgent = JSON.stringify({
    logs: {
      logs_collected: {
        files: {
          collect_list: [
            // The agent writes JSON lines (each carrying the jobId it concerns) and EMF metrics,
            // which CloudWatch Logs turns into the Kiln metrics.
            {
              file_path: AGENT_PATHS.log,
              log_group_name: o.logGroupName,
              log_stream_name: '{instance_id}/agent',
            },
            {
              file_path: '/var/log/cloud-init-output.log',
              log_group_name: o.logGroupName,
              log_stream_name: '{instance_id}/boot',
            },
          ],
        },
      },
    },
  });

  const logrotate = [
    `${AGENT_PATHS.log} {`,
    '  daily',
    '  rotate 7',
    '  maxsize 100M',
    '  compress',
    '  missingok',
    '  notifempty',
    '  copytruncate',
    '}',
  ].join('\n');

  return [
    'set -euo pipefail',
    // A half-booted instance would sit idle while its pool's jobs wait: stop it so the Auto Scaling
    // group replaces it, after a few minutes in which its boot log reaches CloudWatch.
    'trap \'echo "kiln bootstrap failed at line $LINENO"; shutdown -h +5\' ERR',
    'retry() { local n=0; until "$@"; do n=$((n + 1)); [ "$n" -ge 5 ] && return 1; sleep 10; done; }',
    `retry dnf install -y nodejs${o.nodeMajor} amazon-cloudwatch-agent logrotate`,
    ...writeFile(AGENT_PATHS.cloudWatchAgentConfig, '0644', cloudWatchAgent),
    `/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:${AGENT_PATHS.cloudWatchAgentConfig}`,
    `install -d -m 0755 /opt/kiln /etc/kiln /var/log/kiln`,
    `install -d -m 0700 ${AGENT_PATHS.workDir}`,
    `retry aws s3 cp --region ${o.region} s3://${o.bundleBucket}/${o.bundleKey} ${AGENT_PATHS.bundle}`,
    ...writeFile(AGENT_PATHS.env, '0644', envFile),
    ...writeFile(AGENT_PATHS.config, '0644', o.configJson),
    ...writeFile(AGENT_PATHS.queueUrls, '0644', o.queueUrlsJson),
    ...writeFile(AGENT_PATHS.launcher, '0755', launcher),
    ...writeFile(AGENT_PATHS.unit, '0644', unit),
    ...writeFile('/etc/logrotate.d/kiln-agent', '0644', logrotate),
    // Rotation is housekeeping: its absence must not stop the instance.
    'systemctl enable --now logrotate.timer || true',
    'systemctl daemon-reload',
    `systemctl enable --now ${AGENT_UNIT}`,
  ];
}
