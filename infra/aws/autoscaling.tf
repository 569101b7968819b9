# The APIs scale on CPU; the workers on their consumer group's lag (MSK publishes it
# per group and topic with PER_TOPIC_PER_PARTITION monitoring). The relay is not
# scaled: one instance per context is active, the second is a warm standby.

resource "aws_appautoscaling_target" "role" {
  for_each           = { for role, spec in var.services : role => spec if spec.max > spec.min }
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.role[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.min
  max_capacity       = each.value.max
}

resource "aws_appautoscaling_policy" "api_cpu" {
  for_each           = { for role, spec in local.apis : role => spec if spec.max > spec.min }
  name               = "${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = "ecs"
  resource_id        = aws_appautoscaling_target.role[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.role[each.key].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = var.api_cpu_target
    scale_in_cooldown  = 120
    scale_out_cooldown = 30
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "worker_lag" {
  name               = "worker-consumer-lag"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = "ecs"
  resource_id        = aws_appautoscaling_target.role["worker"].resource_id
  scalable_dimension = aws_appautoscaling_target.role["worker"].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = var.worker_lag_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    # Lag per running worker: the group's summed offset lag over the task count.
    customized_metric_specification {
      metrics {
        id          = "lag"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/Kafka"
            metric_name = "SumOffsetLag"
            dimensions {
              name  = "Cluster Name"
              value = aws_msk_cluster.main.cluster_name
            }
            dimensions {
              name  = "Consumer Group"
              value = var.consumer_group
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.main.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.role["worker"].name
            }
          }
        }
      }
      metrics {
        id          = "lag_per_task"
        expression  = "lag / MAX([tasks, 1])"
        label       = "Consumer lag per worker"
        return_data = true
      }
    }
  }
}
