/** Placeholder: the batch layer's handler lands with its issue. */
export const handler = async (): Promise<void> => {
  throw new Error('the batch handler is not implemented yet');
};
