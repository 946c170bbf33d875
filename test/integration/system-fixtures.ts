import { cpuTemplate, SEED_TASKS, SEED_TEST_FILES } from '@fleet/testing';

/** The four config files of the seed's end-to-end test, in its shapes, tuned to run in a minute. */
export function systemConfigFiles(): Record<string, object | string> {
  return {
    'resource_manager_config.json': {
      min_workers: 1,
      max_workers: 3,
      polling_interval: 0.5,
      metrics_window: 10,
      // No cpu_threshold_high / memory_threshold_high: those host guards hold scale-ups while the host is
      // busy, and this host is busy with the rest of the test run (the guards' rules are unit tables).
      cpu_threshold_low: 20.0,
      memory_threshold_low: 20.0,
      queue_threshold_high: 5,
      queue_threshold_low: 1,
      scale_up_cooldown: 1,
      scale_down_cooldown: 3,
      scale_down_stabilization: 3,
      forecast_horizon: 5,
      worker_startup_buffer: 1,
      cost_optimization_weight: 0.5,
      enable_predictive_scaling: false,
      enable_anomaly_detection: true,
      preferred_providers: ['LOCAL'],
      preferred_regions: ['us-east-1'],
      scaling_strategy: 'ADAPTIVE',
      deprovision_on_stop: true,
      lease_ttl: 3,
      stop_grace_period: 10,
      pools: { 'cpu-worker': { target_backlog_per_worker: 6 } },
    },
    'performance_analyzer_config.json': {
      polling_interval: 0.5,
      history_window: 200,
      anomaly_detection: {
        z_score_threshold: 3.0,
        isolation_forest: { enabled: false },
        moving_average: { enabled: true, window_size: 3, threshold_factor: 2.0 },
      },
      trend_analysis: {
        minimum_data_points: 5,
        regression_confidence_threshold: 0.7,
        trend_classification: {
          stable_threshold: 0.05,
          improvement_direction: {
            latency_ms: 'decreasing',
            throughput_items_per_second: 'increasing',
            memory_mb: 'decreasing',
            cpu_percent: 'decreasing',
            execution_time_seconds: 'decreasing',
            task_processing_rate: 'increasing',
          },
        },
      },
      regression_detection: { baseline_window: 30, recent_window: 10, significance: 0.001 },
      reporting: {
        generate_charts: true,
        alert_thresholds: {
          run_time_ms: { warning: 1.5, critical: 3.0 },
          latency_ms: { warning: 1.5, critical: 2.0 },
          throughput_items_per_second: { warning: 0.75, critical: 0.5 },
          memory_mb: { warning: 1.2, critical: 1.5 },
          cpu_percent: { warning: 1.3, critical: 1.6 },
          execution_time_seconds: { warning: 1.5, critical: 2.0 },
          task_processing_rate: { warning: 0.8, critical: 0.6 },
        },
        email_alerts: false,
        email_recipients: [],
      },
      metrics_to_track: [
        'latency_ms',
        'throughput_items_per_second',
        'memory_mb',
        'cpu_percent',
        'execution_time_seconds',
        'task_processing_rate',
        'queue_length',
      ],
      metrics_grouping: ['model_name'],
      claim_idle_ms: 2000,
    },
    'worker_templates.json': {
      'cpu-worker': cpuTemplate({
        instance_type: 'local',
        startup_script: 'python worker.py --coordinator {coordinator_url} --worker-type cpu',
        resources: { cpu: 2, memory_gb: 4, disk_gb: 10 },
        capabilities: ['CPU', 'ONNX'],
        concurrency: 2,
        runners: {
          test: { '.mjs': ['node', '--test', '{test_file}'], '.py': ['python3', '{test_file}'] },
          benchmark: ['node', 'bench.mjs', '--model', '{model}', '--batch-sizes', '{batch_sizes}', '--iterations', '{iterations}'],
        },
      }),
      'gpu-worker': {
        provider: 'MANUAL',
        instance_type: 'local',
        resources: { cpu: 4, memory_gb: 16, disk_gb: 50, gpu: 1 },
        capabilities: ['GPU', 'CUDA', 'ONNX'],
      },
    },
    'test_tasks.json': {
      tasks: [
        ...SEED_TASKS.tasks,
        { type: 'test', name: 'A test that fails on purpose', priority: 1, labels: { expect: 'failure' }, config: { test_file: 'fails.test.mjs' } },
      ],
    },
    ...SEED_TEST_FILES,
  };
}
