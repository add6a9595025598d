/** Placeholder: the speed layer's handler lands with its issue. */
export const handler = async (): Promise<void> => {
  throw new Error('the speed handler is not implemented yet');
};
