from configs import default
def get_config(arg=None):
  c = default.get_config()
  c.data.name='digits'; c.data.batch_size=64; c.data.eval_batch_size=296
  c.model.hidden_sizes=(8,)
  c.optim.learning_rate=0.1
  c.train.num_epochs=2; c.train.log_every_steps=10; c.train.trajectory_every_steps=10
  c.train.keep_checkpoints=5
  return c
